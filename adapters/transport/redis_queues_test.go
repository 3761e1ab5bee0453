//go:build !noredis

package transport_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/internal/testenv"
)

// On redis a requeued message goes back to its topic's stream, which every
// handler of the topic reads: marked for the one that failed, the others
// skip it. A stream without that handler's group would reach no one, and
// is refused.
func TestRedisPoisonQueue_RequeueReachesTheHandlerOnly(t *testing.T) {
	r := newRedisRig(t, nil)
	queue, err := transport.NewPoisonQueue(r.cfg)
	require.NoError(t, err)
	topic := testenv.Name("events")
	const failed, other = "Failed", "Other"
	handled := map[string]chan *message.Message{failed: make(chan *message.Message, 10), other: make(chan *message.Message, 10)}
	router, err := message.NewRouter(message.RouterConfig{}, nil)
	require.NoError(t, err)
	router.AddMiddleware(transport.ForNamedHandler)
	for name, got := range handled {
		router.AddConsumerHandler(name, topic, subscriber(t, r.tr, name, topic), func(msg *message.Message) error {
			got <- msg
			return nil
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { _ = router.Run(ctx); close(stopped) }()
	t.Cleanup(func() { cancel(); <-stopped })
	<-router.Running()

	poison := transport.UniquePoisonIDs(r.tr.Publisher)
	for _, handler := range []string{failed, "Gone"} {
		msg := newTestMessage("poisoned for " + handler)
		msg.Metadata.Set(middleware.PoisonedTopicKey, topic)
		msg.Metadata.Set(middleware.PoisonedHandlerKey, handler)
		require.NoError(t, poison.Publish(transport.PoisonTopic, msg))
	}
	listed := listPoisoned(t, testenv.Context(t), queue)
	require.Len(t, listed, 2)

	_, err = queue.Requeue(testenv.Context(t), listed[1].ID)
	assert.ErrorContains(t, err, "no consumer group Gone")
	_, err = queue.Requeue(testenv.Context(t), listed[0].ID)
	require.NoError(t, err)
	assert.Equal(t, listed[1:], listPoisoned(t, testenv.Context(t), queue), "the refused one is kept")

	select {
	case got := <-handled[failed]:
		assert.Equal(t, listed[0].MessageUUID, got.UUID)
	case <-time.After(transportWait):
		t.Fatal("the handler that failed did not get the requeued message")
	}
	// The other group read it too, and acked it untouched: its backlog is
	// empty, and its handler was not called.
	c := newBacklog(t, transport.BacklogConfig{Transport: r.tr, DB: testenv.MigratedDB(t, testenv.Backends()[0]).DB,
		Handlers: []transport.HandlerTopic{{Handler: other, Topic: topic}}})
	require.Eventually(t, func() bool { return series(t, c)["onboard_handler_backlog_messages{handler=Other}"] == 0 },
		transportWait, 20*time.Millisecond)
	assert.Empty(t, handled[other], "skipped by the other handler")
}

// On redis, a handler's backlog is what its group has not read yet plus
// what it read and has not acked, and the oldest age is that of the oldest
// of them, from its stream id (the milliseconds of its XADD).
func TestBacklogCollector_Redis(t *testing.T) {
	r := newRedisRig(t, nil)
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	topic := testenv.Name("events")
	stream := r.tr.Topic(topic)
	sub := subscriber(t, r.tr, "H", topic)
	cfg := transport.BacklogConfig{Transport: r.tr, DB: db.DB,
		Handlers: []transport.HandlerTopic{{Handler: "H", Topic: topic}, {Handler: "Never", Topic: "events.Never"}}}
	got := series(t, newBacklog(t, cfg))
	assert.Equal(t, 0.0, got["onboard_handler_backlog_messages{handler=H}"])
	assert.Equal(t, 0.0, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"])
	assert.Equal(t, 0.0, got["onboard_handler_backlog_messages{handler=Never}"], "a stream never created holds nothing")
	assert.Equal(t, 0.0, got["onboard_poison_queue_messages{}"])
	assert.Equal(t, 1.0, got["onboard_backlog_up{source=handlers}"])

	// An entry added a minute ago (by Redis's clock), then one now.
	const age = time.Minute
	ctx := testenv.Context(t)
	now, err := r.client.Time(ctx).Result()
	require.NoError(t, err)
	old := fmt.Sprintf("%d-0", now.Add(-age).UnixMilli())
	require.NoError(t, r.client.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: old,
		Values: []any{"_watermill_message_uuid", "old", "payload", "old"}}).Err())
	require.NoError(t, r.tr.Publisher.Publish(topic, newTestMessage("recent")))
	require.NoError(t, r.tr.Publisher.Publish(transport.PoisonTopic, newTestMessage("p")))
	got = series(t, newBacklog(t, cfg))
	assert.Equal(t, 2.0, got["onboard_handler_backlog_messages{handler=H}"], "not read yet")
	assert.InDelta(t, age.Seconds(), got["onboard_handler_backlog_oldest_age_seconds{handler=H}"], 5)
	assert.Equal(t, 1.0, got["onboard_poison_queue_messages{}"])

	messages := subscribe(t, sub, topic)
	held := receive(t, messages, "a message")
	second := receive(t, messages, "the other message, by another consumer of the group")
	got = series(t, newBacklog(t, cfg))
	assert.Equal(t, 2.0, got["onboard_handler_backlog_messages{handler=H}"], "read, not acked")
	assert.InDelta(t, age.Seconds(), got["onboard_handler_backlog_oldest_age_seconds{handler=H}"], 5)
	held.Ack()
	second.Ack()
	require.Eventually(t, func() bool {
		got = series(t, newBacklog(t, cfg))
		return got["onboard_handler_backlog_messages{handler=H}"] == 0
	}, transportWait, 20*time.Millisecond, "acked messages leave the backlog")
	assert.Equal(t, 0.0, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"])
}

// After an entry not read yet is deleted, Redis cannot tell a group's lag:
// the backlog counts the entries after the group's last read.
func TestBacklogCollector_RedisCountsWhenTheLagIsUnknown(t *testing.T) {
	r := newRedisRig(t, nil)
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	topic := testenv.Name("events")
	subscriber(t, r.tr, "H", topic)
	ctx := testenv.Context(t)
	var ids []string
	for i := range 3 {
		id, err := r.client.XAdd(ctx, &redis.XAddArgs{Stream: r.tr.Topic(topic),
			Values: []any{"_watermill_message_uuid", fmt.Sprint(i)}}).Result()
		require.NoError(t, err)
		ids = append(ids, id)
	}
	require.NoError(t, r.client.XDel(ctx, r.tr.Topic(topic), ids[1]).Err())
	groups, err := r.client.XInfoGroups(ctx, r.tr.Topic(topic)).Result()
	require.NoError(t, err)
	require.Equal(t, int64(-1), groups[0].Lag, "Redis cannot tell")

	got := series(t, newBacklog(t, transport.BacklogConfig{Transport: r.tr, DB: db.DB,
		Handlers: []transport.HandlerTopic{{Handler: "H", Topic: topic}}}))
	assert.Equal(t, 2.0, got["onboard_handler_backlog_messages{handler=H}"])
	assert.Positive(t, got["onboard_handler_backlog_oldest_age_seconds{handler=H}"]+1, "an age is given")
}

// The retry queue is a table of the database, whatever the transport: on
// redis it publishes a due message back to its topic's stream, marked for
// the handler that failed on it, and that handler alone handles it again.
func TestRetryQueue_RepublishesOnRedis(t *testing.T) {
	r := newRedisRig(t, nil)
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	queue, err := transport.NewRetryQueue(transport.RetryQueueConfig{DB: db.DB, Publisher: r.tr.Publisher,
		FirstDelay: 200 * time.Millisecond, MaxDelay: 400 * time.Millisecond, MaxAge: time.Hour})
	require.NoError(t, err)
	topic := testenv.Name("events")
	refusing, other := newGreylist("grey"), newGreylist()
	router, err := message.NewRouter(message.RouterConfig{}, nil)
	require.NoError(t, err)
	poison, err := middleware.PoisonQueueWithFilter(transport.UniquePoisonIDs(r.tr.Publisher), transport.PoisonTopic,
		func(err error) bool { return transport.Classify(err) == app.FailurePermanent })
	require.NoError(t, err)
	router.AddMiddleware(transport.ForNamedHandler, poison, queue.Middleware)
	router.AddConsumerHandler("Refusing", topic, subscriber(t, r.tr, "Refusing", topic), refusing.handle)
	router.AddConsumerHandler("Other", topic, subscriber(t, r.tr, "Other", topic), other.handle)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = router.Run(ctx); done <- struct{}{} }()
	<-router.Running()
	go func() { queue.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); <-done; <-done })

	require.NoError(t, r.tr.Publisher.Publish(topic, message.NewMessage("grey-uuid", []byte("grey"))))
	require.Eventually(t, func() bool { return refusing.tries("grey") >= 3 }, transportWait, 20*time.Millisecond,
		"retried from the queue, through the stream")
	refusing.accept("grey")
	waiting := func() int {
		w, err := queue.List(testenv.Context(t))
		require.NoError(t, err)
		return len(w)
	}
	require.Eventually(t, func() bool { return waiting() == 0 }, transportWait, 20*time.Millisecond,
		"handled once the refusal ends")
	for _, group := range []string{"Refusing", "Other"} {
		require.Eventually(t, func() bool { return r.pending(t, r.tr.Topic(topic), group) == 0 },
			transportWait, 20*time.Millisecond, "%s acked every copy", group)
	}
	assert.Equal(t, 1, other.tries("grey"), "the other handler skipped the retries")
	assert.Zero(t, r.length(t, r.tr.Topic(transport.PoisonTopic)), "nothing poisoned")
}
