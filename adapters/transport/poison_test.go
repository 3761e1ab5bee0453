package transport_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

func TestPoisonQueue_ListAndRequeue(t *testing.T) {
	forEachTransport(t, durableKinds, func(t *testing.T, tc transportCase) {
		var (
			tr    *transport.Transport
			queue transport.PoisonQueue
			err   error
		)
		switch tc.kind {
		case transport.KindSQL:
			db := testenv.MigratedDB(t, tc.backend)
			tr = newSQLTransport(t, db)
			queue, err = transport.NewPoisonQueue(transport.Config{Kind: tc.kind, DB: db.DB})
		case transport.KindAMQP, transport.KindRedis:
			// A poison queue of this test's own.
			cfg := transport.Config{Kind: tc.kind, Namespace: testNamespace(t, tc.kind)}
			if tc.kind == transport.KindAMQP {
				cfg.AMQPURL = testenv.URL(t, testenv.AMQPURLVar)
			} else {
				cfg.RedisURL = testenv.URL(t, testenv.RedisURLVar)
			}
			tr, err = transport.NewTransport(cfg)
			require.NoError(t, err)
			t.Cleanup(func() { assert.NoError(t, tr.Close()) })
			queue, err = transport.NewPoisonQueue(cfg)
		case transport.KindNATS, transport.KindGoogleCloud, transport.KindSQS:
			cfg := map[string]func(*testing.T) transport.Config{
				transport.KindNATS: natsConfig, transport.KindGoogleCloud: googleCloudConfig, transport.KindSQS: sqsConfig,
			}[tc.kind](t)
			tr = newTransportOf(t, cfg)
			queue, err = transport.NewPoisonQueue(cfg)
		}
		require.NoError(t, err)
		const handler = "FailingHandler"
		topic := testenv.Name("events")
		if tc.kind == transport.KindAMQP {
			physical := tr.Topic(topic)
			t.Cleanup(func() { deleteAMQPTopology(t, physical, handler) })
		}
		messages := subscribe(t, subscriber(t, tr, handler, topic), topic)
		ctx := testenv.Context(t)

		// What the router's PoisonQueue middleware publishes.
		msg := newTestMessage(`{"poisoned":true}`)
		msg.Metadata.Set(middleware.PoisonedTopicKey, topic)
		msg.Metadata.Set(middleware.PoisonedHandlerKey, handler)
		msg.Metadata.Set(middleware.ReasonForPoisonedKey, "boom")
		// Two handlers failed on it: two copies, each with an id of its own.
		poison := transport.UniquePoisonIDs(tr.Publisher)
		require.NoError(t, poison.Publish(transport.PoisonTopic, msg))
		other := msg.Copy()
		other.Metadata.Set(middleware.PoisonedHandlerKey, "OtherHandler")
		require.NoError(t, poison.Publish(transport.PoisonTopic, other))

		var listed []transport.PoisonedMessage
		require.Eventually(t, func() bool { listed = listPoisoned(t, ctx, queue); return len(listed) == 2 },
			transportWait, 20*time.Millisecond, "both copies are listed")
		want := transport.PoisonedMessage{ID: listed[0].ID, MessageUUID: msg.UUID, Topic: topic, Handler: handler,
			Reason: "boom", Bytes: len(msg.Payload)}
		assert.Equal(t, want, listed[0], "listed, without its payload")
		assert.NotEqual(t, msg.UUID, listed[0].ID)
		assert.NotEqual(t, listed[0].ID, listed[1].ID, "one id per copy")
		assert.Equal(t, msg.UUID, listed[1].MessageUUID)
		assert.Equal(t, listed, listPoisoned(t, ctx, queue), "listing takes nothing away")

		requeued, err := queue.Requeue(ctx, want.ID)
		require.NoError(t, err)
		assert.Equal(t, want, requeued)
		assert.Equal(t, listed[1:], listPoisoned(t, ctx, queue), "gone from the poison queue, the other copy kept")

		got := receive(t, messages, "the requeued message")
		got.Ack()
		assert.Equal(t, msg.UUID, got.UUID, "its own id again")
		assert.Equal(t, handler, got.Metadata.Get(transport.ForHandlerKey), "for the handler that failed on it alone")
		assert.Equal(t, string(msg.Payload), string(got.Payload))
		assert.Equal(t, msg.Metadata.Get("test"), got.Metadata.Get("test"), "its own metadata is kept")
		assert.Empty(t, got.Metadata.Get(middleware.ReasonForPoisonedKey), "the poison marks are not")
		if tc.kind == transport.KindSQS {
			assert.Equal(t, tr.Topic(topic), got.Metadata.Get("onboard_topic"), // the sqs transport's topic key
				"back on its handler's queue with its own topic, for its dead-letter queue to name")
		}

		_, err = queue.Requeue(ctx, want.ID)
		assert.ErrorIs(t, err, transport.ErrPoisonedMessageNotFound, "requeued once only")
	})
}

func TestPoisonQueue_GoChannelKeepsNothing(t *testing.T) {
	_, err := transport.NewPoisonQueue(transport.Config{Kind: transport.KindGoChannel})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gochannel keeps no poisoned messages")
}

func listPoisoned(t *testing.T, ctx context.Context, queue transport.PoisonQueue) []transport.PoisonedMessage {
	t.Helper()
	poisoned, err := queue.List(ctx)
	require.NoError(t, err)
	return poisoned
}
