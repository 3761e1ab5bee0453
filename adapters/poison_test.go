package adapters_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/internal/testenv"
)

func TestPoisonQueue_ListAndRequeue(t *testing.T) {
	kinds := []string{adapters.TransportSQL, adapters.TransportAMQP}
	forEachTransport(t, kinds, func(t *testing.T, tc transportCase) {
		var (
			tr    *adapters.Transport
			queue adapters.PoisonQueue
			err   error
		)
		if tc.kind == adapters.TransportSQL {
			db := migratedDB(t, tc.backend)
			tr = newSQLTransport(t, db)
			queue, err = adapters.NewPoisonQueue(tc.kind, db.DB, "")
		} else {
			tr = newTestTransport(t, tc)
			queue, err = adapters.NewPoisonQueue(tc.kind, nil, testenv.URL(t, testenv.AMQPURLVar))
		}
		require.NoError(t, err)
		const handler = "FailingHandler"
		topic := uniqueTopic(t, tc.kind, handler)
		messages := subscribe(t, subscriber(t, tr, handler, topic), topic)
		ctx := testTimeoutCtx(t)

		// What the router's PoisonQueue middleware publishes.
		msg := newTestMessage(`{"poisoned":true}`)
		msg.Metadata.Set(middleware.PoisonedTopicKey, topic)
		msg.Metadata.Set(middleware.PoisonedHandlerKey, handler)
		msg.Metadata.Set(middleware.ReasonForPoisonedKey, "boom")
		waitPublished(t, publishAsync(tr, adapters.PoisonTopic, msg))

		want := adapters.PoisonedMessage{ID: msg.UUID, Topic: topic, Handler: handler, Reason: "boom", Bytes: len(msg.Payload)}
		assert.Contains(t, listPoisoned(t, ctx, queue), want, "listed, without its payload")
		assert.Contains(t, listPoisoned(t, ctx, queue), want, "listing takes nothing away")

		requeued, err := queue.Requeue(ctx, msg.UUID)
		require.NoError(t, err)
		assert.Equal(t, want, requeued)
		assert.NotContains(t, listPoisoned(t, ctx, queue), want, "gone from the poison queue")

		got := receive(t, messages, "the requeued message")
		got.Ack()
		assert.Equal(t, msg.UUID, got.UUID)
		assert.Equal(t, string(msg.Payload), string(got.Payload))
		assert.Equal(t, msg.Metadata.Get("test"), got.Metadata.Get("test"), "its own metadata is kept")
		assert.Empty(t, got.Metadata.Get(middleware.ReasonForPoisonedKey), "the poison marks are not")

		_, err = queue.Requeue(ctx, msg.UUID)
		assert.ErrorIs(t, err, adapters.ErrPoisonedMessageNotFound, "requeued once only")
	})
}

func TestPoisonQueue_GoChannelKeepsNothing(t *testing.T) {
	_, err := adapters.NewPoisonQueue(adapters.TransportGoChannel, nil, "")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "gochannel keeps no poisoned messages")
}

func listPoisoned(t *testing.T, ctx context.Context, queue adapters.PoisonQueue) []adapters.PoisonedMessage {
	t.Helper()
	poisoned, err := queue.List(ctx)
	require.NoError(t, err)
	return poisoned
}
