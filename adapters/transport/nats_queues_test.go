//go:build !nonats

package transport_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/testenv"
)

// On nats, a message the retry queue takes back to its handler (under its
// own UUID, within the duplicate window of its first publish) is
// delivered again, for that handler alone.
func TestRetryQueue_RepublishesOnNATS(t *testing.T) {
	tr := newTransportOf(t, natsConfig(t))
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	queue, err := transport.NewRetryQueue(transport.RetryQueueConfig{
		DB: db.DB, Publisher: tr.Publisher, FirstDelay: 100 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxAge: time.Hour,
	})
	require.NoError(t, err)
	topic := testenv.Name("events")
	refusing, other := newGreylist("grey"), newGreylist()

	router, err := message.NewRouter(message.RouterConfig{}, nil)
	require.NoError(t, err)
	router.AddMiddleware(transport.ForNamedHandler, queue.Middleware)
	router.AddConsumerHandler("Refusing", topic, subscriber(t, tr, "Refusing", topic), refusing.handle)
	router.AddConsumerHandler("Other", topic, subscriber(t, tr, "Other", topic), other.handle)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = router.Run(ctx); done <- struct{}{} }()
	<-router.Running()
	go func() { queue.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); _ = router.Close(); <-done; <-done })

	msg := message.NewMessage(transport.UUIDV7At(time.Now()), []byte("grey"))
	require.NoError(t, tr.Publisher.Publish(topic, msg))
	require.Eventually(t, func() bool { return refusing.tries("grey") >= 3 }, transportWait, 20*time.Millisecond,
		"retried after its delays")
	refusing.accept("grey")
	require.Eventually(t, func() bool {
		waiting, err := queue.List(testenv.Context(t))
		require.NoError(t, err)
		return len(waiting) == 0
	}, transportWait, 20*time.Millisecond, "handled once the refusal ends")
	assert.Equal(t, 1, other.tries("grey"), "the retries were for the handler that failed alone")
}

// On nats, a handler's backlog is its durable consumer's messages not
// acked yet, delivered or not, on every replica; the oldest age is the
// oldest of them's, since the stream stored it. The poison queue's is
// its stream's count.
func TestBacklogCollector_NATS(t *testing.T) {
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	tr, err := transport.NewTransport(natsConfig(t))
	require.NoError(t, err)
	topic := testenv.Name("events")
	sub := subscriber(t, tr, "H", topic)
	cfg := transport.BacklogConfig{Transport: tr, DB: db.DB, Handlers: []transport.HandlerTopic{
		{Handler: "H", Topic: topic}, {Handler: "NotYetSubscribed", Topic: topic},
	}}
	empty := map[string]float64{
		"onboard_outbox_pending_messages{}": 0, "onboard_outbox_oldest_age_seconds{}": 0,
		"onboard_poison_queue_messages{}": 0,
	}
	for _, h := range []string{"H", "NotYetSubscribed"} {
		for _, name := range []string{"onboard_handler_backlog_messages", "onboard_handler_backlog_oldest_age_seconds",
			"onboard_retry_queue_messages", "onboard_retry_queue_oldest_age_seconds"} {
			empty[name+"{handler="+h+"}"] = 0
		}
	}
	for _, source := range []string{"outbox", "handlers", "retry_queue", "poison_queue"} {
		empty["onboard_backlog_up{source="+source+"}"] = 1
	}
	assert.Equal(t, empty, series(t, newBacklog(t, cfg)), "all empty")

	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("first")))
	var got map[string]float64
	require.Eventually(t, func() bool {
		got = series(t, newBacklog(t, cfg))
		return got["onboard_handler_backlog_oldest_age_seconds{handler=H}"] >= 1
	}, transportWait, 50*time.Millisecond, "the first message ages")
	require.NoError(t, tr.Publisher.Publish(topic, newTestMessage("second"), newTestMessage("third")))
	require.NoError(t, tr.Publisher.Publish(transport.PoisonTopic, newTestMessage("poisoned")))
	got = series(t, newBacklog(t, cfg))
	assert.Equal(t, 3.0, got["onboard_handler_backlog_messages{handler=H}"])
	assert.GreaterOrEqual(t, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"], 1.0, "the oldest's age")
	assert.Less(t, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"], 60.0)
	assert.Equal(t, 0.0, got["onboard_handler_backlog_messages{handler=NotYetSubscribed}"])
	assert.Equal(t, 1.0, got["onboard_poison_queue_messages{}"])

	// Delivered, not acked yet: still waiting, the oldest still the first.
	messages := subscribe(t, sub, topic)
	var held []*message.Message
	for range 3 {
		held = append(held, receive(t, messages, "a waiting message"))
	}
	got = series(t, newBacklog(t, cfg))
	assert.Equal(t, 3.0, got["onboard_handler_backlog_messages{handler=H}"], "held, not acked")
	assert.GreaterOrEqual(t, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"], 1.0)
	for _, m := range held {
		m.Ack()
	}
	require.Eventually(t, func() bool {
		got = series(t, newBacklog(t, cfg))
		return got["onboard_handler_backlog_messages{handler=H}"] == 0
	}, transportWait, 20*time.Millisecond, "acked messages leave the backlog")
	assert.Zero(t, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"])

	// NATS out of reach: the transport's sources are down, the others read on.
	require.NoError(t, tr.Close())
	got = series(t, newBacklog(t, cfg))
	assert.Equal(t, 0.0, got["onboard_backlog_up{source=handlers}"])
	assert.Equal(t, 0.0, got["onboard_backlog_up{source=poison_queue}"])
	assert.Equal(t, 1.0, got["onboard_backlog_up{source=retry_queue}"])
	assert.NotContains(t, got, "onboard_handler_backlog_messages{handler=H}")
}

// A requeue needs the consumer of the handler it goes back to: no handler
// would read it without one. The message stays poisoned meanwhile.
func TestNATSPoisonQueue_RequeueNeedsTheHandlersConsumer(t *testing.T) {
	cfg := natsConfig(t)
	tr := newTransportOf(t, cfg)
	queue, err := transport.NewPoisonQueue(cfg)
	require.NoError(t, err)
	ctx := testenv.Context(t)
	topic := testenv.Name("events")
	msg := newTestMessage(`{"poisoned":true}`)
	msg.Metadata.Set(middleware.PoisonedTopicKey, topic)
	msg.Metadata.Set(middleware.PoisonedHandlerKey, "GoneHandler")
	require.NoError(t, transport.UniquePoisonIDs(tr.Publisher).Publish(transport.PoisonTopic, msg))
	listed := listPoisoned(t, ctx, queue)
	require.Len(t, listed, 1)

	_, err = queue.Requeue(ctx, listed[0].ID)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "GoneHandler")
	assert.Equal(t, listed, listPoisoned(t, ctx, queue), "still poisoned")
}

// A message poisoned after its first delivery comes back when requeued,
// although its first publish, under the same UUID, is within the
// duplicate window.
func TestNATSPoisonQueue_RequeueWithinTheDuplicateWindow(t *testing.T) {
	cfg := natsConfig(t)
	tr := newTransportOf(t, cfg)
	queue, err := transport.NewPoisonQueue(cfg)
	require.NoError(t, err)
	ctx := testenv.Context(t)
	topic := testenv.Name("events")
	messages := subscribe(t, subscriber(t, tr, "H", topic), topic)
	msg := newTestMessage("once poisoned")
	require.NoError(t, tr.Publisher.Publish(topic, msg))
	receive(t, messages, "the first delivery").Ack()

	poisoned := msg.Copy()
	poisoned.Metadata.Set(middleware.PoisonedTopicKey, topic)
	poisoned.Metadata.Set(middleware.PoisonedHandlerKey, "H")
	require.NoError(t, transport.UniquePoisonIDs(tr.Publisher).Publish(transport.PoisonTopic, poisoned))
	listed := listPoisoned(t, ctx, queue)
	require.Len(t, listed, 1)
	_, err = queue.Requeue(ctx, listed[0].ID)
	require.NoError(t, err)

	got := receive(t, messages, "the requeued message")
	got.Ack()
	assert.Equal(t, msg.UUID, got.UUID)
	assert.Empty(t, listPoisoned(t, ctx, queue))
}
