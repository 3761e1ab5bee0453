package transport

import (
	"testing"

	amqp091 "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
)

// The poison queue keeps what it holds however often it is listed:
// RabbitMQ 3 sets no delivery limit (and would drop at once under -1),
// RabbitMQ 4 sets 20 unless told -1.
func TestAMQPQueues_PoisonQueueHasNoDeliveryLimit(t *testing.T) {
	for server, want := range map[string]amqp091.Table{
		"3.10.8": {"x-queue-type": "quorum"},
		"4.1.0":  {"x-queue-type": "quorum", "x-delivery-limit": int64(-1)},
	} {
		q := newAMQPQueues(Config{AMQPQueueType: AMQPQueueQuorum})
		q.server = server
		assert.Equal(t, want, q.poison(), server)
	}
	assert.Nil(t, newAMQPQueues(Config{}).poison(), "classic queues take no arguments")
}
