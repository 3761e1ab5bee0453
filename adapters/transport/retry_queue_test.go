package transport_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/internal/testenv"
)

// greylist is a handler's effect that a server refuses for some messages,
// as a greylisting SMTP server refuses some recipients, and counts what it
// was given.
type greylist struct {
	mu       sync.Mutex
	refused  map[string]bool // payloads
	attempts map[string]int
}

func newGreylist(refused ...string) *greylist {
	g := &greylist{refused: map[string]bool{}, attempts: map[string]int{}}
	for _, p := range refused {
		g.refused[p] = true
	}
	return g
}

func (g *greylist) handle(msg *message.Message) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.attempts[string(msg.Payload)]++
	if g.refused[string(msg.Payload)] {
		return &mail.SMTPError{Step: "RCPT TO", Code: 451, Enhanced: "4.7.1"}
	}
	return nil
}

func (g *greylist) accept(payload string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	delete(g.refused, payload)
}

func (g *greylist) tries(payload string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.attempts[payload]
}

type retryRig struct {
	queue    *transport.RetryQueue
	pubSub   *gochannel.GoChannel
	topic    string
	refusing *greylist // the "Refusing" handler
	other    *greylist // "Other", on the same topic, refuses nothing
	poisoned <-chan *message.Message
}

// newRetryRig runs a router on gochannel with the service's middleware
// order: two handlers on one topic, poison queue, retry queue.
func newRetryRig(t *testing.T, db *testenv.DB, cfg transport.RetryQueueConfig, refused ...string) *retryRig {
	t.Helper()
	logger := watermill.NopLogger{}
	pubSub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, logger)
	t.Cleanup(func() { _ = pubSub.Close() })
	cfg.DB, cfg.Publisher = db.DB, pubSub
	queue, err := transport.NewRetryQueue(cfg)
	require.NoError(t, err)
	rig := &retryRig{queue: queue, pubSub: pubSub, topic: "events.Retried", refusing: newGreylist(refused...), other: newGreylist()}
	rig.poisoned, err = pubSub.Subscribe(context.Background(), transport.PoisonTopic)
	require.NoError(t, err)

	router, err := message.NewRouter(message.RouterConfig{}, logger)
	require.NoError(t, err)
	poison, err := middleware.PoisonQueueWithFilter(transport.UniquePoisonIDs(pubSub), transport.PoisonTopic,
		func(err error) bool { return transport.Classify(err) == app.FailurePermanent })
	require.NoError(t, err)
	router.AddMiddleware(transport.ForNamedHandler, poison, queue.Middleware)
	router.AddConsumerHandler("Refusing", rig.topic, pubSub, rig.refusing.handle)
	router.AddConsumerHandler("Other", rig.topic, pubSub, rig.other.handle)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	go func() { _ = router.Run(ctx); done <- struct{}{} }()
	<-router.Running()
	go func() { queue.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() {
		cancel()
		_ = router.Close()
		<-done
		<-done
	})
	return rig
}

func (r *retryRig) publish(t *testing.T, payloads ...string) {
	t.Helper()
	for _, p := range payloads {
		require.NoError(t, r.pubSub.Publish(r.topic, message.NewMessage(p+"-uuid", []byte(p))))
	}
}

func (r *retryRig) waiting(t *testing.T) []transport.DeferredMessage {
	t.Helper()
	waiting, err := r.queue.List(testenv.Context(t))
	require.NoError(t, err)
	return waiting
}

// A message refused for itself alone leaves the head of its handler's
// queue: the messages after it are handled at once, it is listed with its
// reason and next attempt, retried after growing delays for its handler
// alone, and handled once the refusal ends.
func TestRetryQueue_RefusedMessageWaitsOffTheQueue(t *testing.T) {
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			rig := newRetryRig(t, testenv.MigratedDB(t, backend), transport.RetryQueueConfig{
				FirstDelay: 200 * time.Millisecond, MaxDelay: 400 * time.Millisecond, MaxAge: time.Hour,
			}, "grey")

			refusedFrom := time.Now()
			rig.publish(t, "grey", "after-1", "after-2") // returns once both handlers acked each
			assert.Equal(t, 1, rig.refusing.tries("grey"), "tried once, then set aside")
			assert.Equal(t, 1, rig.refusing.tries("after-2"), "the next messages are not held back")

			waiting := rig.waiting(t)
			refusedBy := time.Now()
			require.Len(t, waiting, 1)
			w := waiting[0]
			assert.Equal(t, "Refusing", w.Handler)
			assert.Equal(t, rig.topic, w.Topic)
			assert.Equal(t, 1, w.Attempts)
			assert.Contains(t, w.Reason, "451 4.7.1")
			assert.Equal(t, len("grey"), w.Bytes)
			// The first delay (200 ms, ±20 % jitter) after the refusal, stored
			// to the millisecond.
			assert.WithinRange(t, w.NextAttempt, refusedFrom.Add(160*time.Millisecond-time.Millisecond),
				refusedBy.Add(240*time.Millisecond), "next attempt")

			require.Eventually(t, func() bool { return rig.refusing.tries("grey") >= 3 }, 10*time.Second, 20*time.Millisecond,
				"retried after its delays")
			assert.Equal(t, 1, rig.other.tries("grey"), "a retry is for the handler that failed alone")

			rig.refusing.accept("grey")
			require.Eventually(t, func() bool { return len(rig.waiting(t)) == 0 }, 10*time.Second, 20*time.Millisecond,
				"handled once the refusal ends")
			tries := rig.refusing.tries("grey")
			assert.Never(t, func() bool { return rig.refusing.tries("grey") > tries }, time.Second, 50*time.Millisecond,
				"not retried after it passed")
			assert.Empty(t, rig.poisoned, "nothing poisoned")
		})
	}
}

// A message still refused at the maximum age is poisoned with its reason.
func TestRetryQueue_PoisonsAtTheMaximumAge(t *testing.T) {
	rig := newRetryRig(t, testenv.MigratedDB(t, testenv.Backends()[0]), transport.RetryQueueConfig{
		FirstDelay: 100 * time.Millisecond, MaxDelay: 200 * time.Millisecond, MaxAge: 700 * time.Millisecond,
	}, "grey")
	start := time.Now()
	rig.publish(t, "grey")

	var poisoned *message.Message
	select {
	case poisoned = <-rig.poisoned:
		poisoned.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("not poisoned")
	}
	assert.GreaterOrEqual(t, time.Since(start), 700*time.Millisecond, "not before its maximum age")
	assert.Equal(t, "grey-uuid", poisoned.Metadata.Get(transport.PoisonedUUIDKey))
	assert.Equal(t, "Refusing", poisoned.Metadata.Get(middleware.PoisonedHandlerKey))
	reason := poisoned.Metadata.Get(middleware.ReasonForPoisonedKey)
	assert.Contains(t, reason, "still failing")
	assert.Contains(t, reason, "451 4.7.1")
	assert.GreaterOrEqual(t, rig.refusing.tries("grey"), 4, "retried until then")
	assert.Eventually(t, func() bool { return len(rig.waiting(t)) == 0 }, 5*time.Second, 20*time.Millisecond,
		"no longer waiting")
}
