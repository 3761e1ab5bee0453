package service

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
)

func TestLoadConfig_AMQPQueueType(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, transport.AMQPQueueClassic, cfg.AMQPQueueType, "classic, as before, by default")
	assert.Equal(t, transport.DefaultAMQPDeliveryLimit, cfg.AMQPDeliveryLimit)

	cfg, err = LoadConfig(env(map[string]string{"AMQP_QUEUE_TYPE": "quorum", "AMQP_DELIVERY_LIMIT": "20"}))
	require.NoError(t, err)
	assert.Equal(t, transport.AMQPQueueQuorum, cfg.AMQPQueueType)
	assert.Equal(t, 20, cfg.AMQPDeliveryLimit)

	_, err = LoadConfig(env(map[string]string{"AMQP_QUEUE_TYPE": "mirrored", "AMQP_DELIVERY_LIMIT": "0"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), `AMQP_QUEUE_TYPE: want classic or quorum, got "mirrored"`)
	assert.Contains(t, err.Error(), "AMQP_DELIVERY_LIMIT")
}
