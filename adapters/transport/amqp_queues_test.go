package transport_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

// On quorum queues, a message its handler keeps failing goes to the poison
// queue once delivered AMQPDeliveryLimit times, listed with its handler,
// topic and reason, and requeued from there like any poisoned message;
// redeliveries, which carry RabbitMQ's delivery count, are read on the way.
func TestAMQPQuorumQueues_DeliveryLimitPoisons(t *testing.T) {
	cfg := amqpTestConfig(t)
	cfg.AMQPQueueType, cfg.AMQPDeliveryLimit = transport.AMQPQueueQuorum, 2
	tr, err := transport.NewTransport(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Close()) })
	queue, err := transport.NewPoisonQueue(cfg)
	require.NoError(t, err)
	const handler = "StubbornHandler"
	topic := testenv.Name("events")
	physical := tr.Topic(topic)
	t.Cleanup(func() { deleteAMQPTopology(t, physical, handler) })
	messages := subscribe(t, subscriber(t, tr, handler, topic), topic)
	ctx := testenv.Context(t)

	msg := newTestMessage(`{"stubborn":true}`)
	require.NoError(t, tr.Publisher.Publish(topic, msg))
	var counts []string
	var listed []transport.PoisonedMessage
	require.Eventually(t, func() bool {
		select {
		case got := <-messages:
			counts = append(counts, got.Metadata.Get("x-delivery-count"))
			got.Nack()
		default:
		}
		listed = listPoisoned(t, ctx, queue)
		return len(listed) == 1
	}, transportWait, 20*time.Millisecond, "dead-lettered to the poison queue")
	assert.Equal(t, []string{"", "1", "2"}, counts, "delivered 3 times: once, and twice again up to the limit")
	assert.Equal(t, handler, listed[0].Handler)
	assert.Equal(t, topic, listed[0].Topic)
	assert.Equal(t, msg.UUID, listed[0].MessageUUID)
	assert.Contains(t, listed[0].Reason, "delivery limit")

	_, err = queue.Requeue(ctx, listed[0].ID)
	require.NoError(t, err)
	got := receive(t, messages, "the requeued message")
	got.Ack()
	assert.Equal(t, msg.UUID, got.UUID)
	assert.Empty(t, got.Metadata.Get("x-delivery-count"), "counted afresh")
	assert.Equal(t, handler, got.Metadata.Get(transport.ForHandlerKey))
	assert.Empty(t, listPoisoned(t, ctx, queue))
}

// RabbitMQ cannot change a queue's type: a start whose AMQP_QUEUE_TYPE
// differs from its queues' fails, saying what to do.
func TestAMQPQuorumQueues_ATypeChangeIsExplained(t *testing.T) {
	cfg := amqpTestConfig(t)
	classic, err := transport.NewTransport(cfg)
	require.NoError(t, err)
	require.NoError(t, classic.Close())

	cfg.AMQPQueueType = transport.AMQPQueueQuorum
	_, err = transport.NewTransport(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "AMQP_QUEUE_TYPE=quorum")
	assert.Contains(t, err.Error(), "PUBSUB_NAMESPACE")
}

func TestTransportConfig_RejectsAnUnknownQueueType(t *testing.T) {
	err := transport.Config{Kind: transport.KindAMQP, AMQPQueueType: "mirrored"}.Validate()
	assert.EqualError(t, err, `AMQP_QUEUE_TYPE: want classic or quorum, got "mirrored"`)
}
