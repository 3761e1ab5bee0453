package event_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
)

// The harness below is shared with seed_signup_points_test.go.

// waitTimeout bounds every wait of these tests; nothing here should take
// more than a fraction of it.
const waitTimeout = 10 * time.Second

// harness is one gochannel pub/sub, publishing through a cqrs.EventBus, on
// which tests start routers wired the way cmd/app wires the service.
type harness struct {
	t      *testing.T
	pubSub *gochannel.GoChannel
	bus    *cqrs.EventBus
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	pubSub := gochannel.NewGoChannel(gochannel.Config{BlockPublishUntilSubscriberAck: true}, watermill.NopLogger{})
	// Cleanups run last-in first-out: routers close first, then the pub/sub,
	// which also releases a publish still waiting for an ack.
	t.Cleanup(func() { assert.NoError(t, pubSub.Close()) })
	bus, err := cqrs.NewEventBusWithConfig(pubSub, cqrs.EventBusConfig{
		GeneratePublishTopic: func(p cqrs.GenerateEventPublishTopicParams) (string, error) {
			return transport.EventTopic(p.EventName), nil
		},
		Marshaler: transport.Marshaler,
	})
	require.NoError(t, err)
	return &harness{t: t, pubSub: pubSub, bus: bus}
}

// sharedSubscriber lets a router "close" its view of the shared gochannel
// without closing it for the other routers of the test.
type sharedSubscriber struct{ message.Subscriber }

func (sharedSubscriber) Close() error { return nil }

// startRouter runs one instance of the service's handlers router with the
// given middleware (outermost first) and handlers, and closes it at the end
// of the test. It returns once the handlers have subscribed.
func (h *harness) startRouter(middlewares []message.HandlerMiddleware, handlers ...cqrs.EventHandler) {
	t := h.t
	t.Helper()
	router, err := message.NewRouter(message.RouterConfig{CloseTimeout: waitTimeout}, watermill.NopLogger{})
	require.NoError(t, err)
	router.AddMiddleware(middlewares...)
	processor, err := cqrs.NewEventProcessorWithConfig(router, cqrs.EventProcessorConfig{
		GenerateSubscribeTopic: func(p cqrs.EventProcessorGenerateSubscribeTopicParams) (string, error) {
			return transport.EventTopic(p.EventName), nil
		},
		SubscriberConstructor: func(cqrs.EventProcessorSubscriberConstructorParams) (message.Subscriber, error) {
			return sharedSubscriber{h.pubSub}, nil
		},
		Marshaler: transport.Marshaler,
		Logger:    watermill.NopLogger{},
	})
	require.NoError(t, err)
	require.NoError(t, processor.AddHandlers(handlers...))

	stopped := make(chan error, 1)
	go func() { stopped <- router.Run(context.Background()) }()
	t.Cleanup(func() {
		assert.NoError(t, router.Close())
		select {
		case err := <-stopped:
			assert.NoError(t, err)
		case <-time.After(waitTimeout):
			t.Error("router did not stop")
		}
	})
	select {
	case <-router.Running():
	case err := <-stopped:
		t.Fatalf("router stopped at start: %v", err)
	case <-time.After(waitTimeout):
		t.Fatal("router did not start")
	}
}

// publishAsync publishes e on the event bus. The pub/sub blocks a publish
// until every subscriber acked, so the returned channel yields once every
// handler is done with the event.
func (h *harness) publishAsync(e any) <-chan error {
	done := make(chan error, 1)
	go func() { done <- h.bus.Publish(context.Background(), e) }()
	return done
}

// publish publishes e and waits until every handler acked it.
func (h *harness) publish(e any) {
	h.t.Helper()
	h.wait(h.publishAsync(e), "publish")
}

// publishMessage publishes an already marshalled message: the very same
// message, UUID included, when called twice, as a redelivery would.
func (h *harness) publishMessage(msg *message.Message) {
	h.t.Helper()
	done := make(chan error, 1)
	go func() { done <- h.pubSub.Publish(transport.EventTopic("UserRegistered"), msg) }()
	h.wait(done, "publish message")
}

func (h *harness) wait(done <-chan error, what string) {
	h.t.Helper()
	select {
	case err := <-done:
		require.NoError(h.t, err, what)
	case <-time.After(waitTimeout):
		h.t.Fatalf("%s: not acked within %s", what, waitTimeout)
	}
}

// poisoned subscribes to the poison topic; each message received is acked.
func (h *harness) poisoned() <-chan *message.Message {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	messages, err := h.pubSub.Subscribe(ctx, transport.PoisonTopic)
	require.NoError(h.t, err)
	return messages
}

// failingMiddleware is the service's retry and poison queue, fast: a
// handler's error is retried, then the message goes to the poison topic.
func failingMiddleware(t *testing.T, pub message.Publisher, results *handlerResults) []message.HandlerMiddleware {
	t.Helper()
	poison, err := middleware.PoisonQueue(pub, transport.PoisonTopic)
	require.NoError(t, err)
	return []message.HandlerMiddleware{
		poison,
		middleware.Retry{MaxRetries: 2, InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond, Multiplier: 2}.Middleware,
		results.middleware,
	}
}

// handlerResults records what each run of a handler returned.
type handlerResults struct {
	mu   sync.Mutex
	errs []error
}

func (r *handlerResults) middleware(next message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		produced, err := next(msg)
		r.mu.Lock()
		r.errs = append(r.errs, err)
		r.mu.Unlock()
		return produced, err
	}
}

func (r *handlerResults) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

func registered(userID, name, email string) domain.UserRegistered {
	return domain.UserRegistered{
		UserID:       userID,
		Name:         name,
		Email:        email,
		RegisteredAt: time.Date(2024, 5, 6, 5, 8, 9, 123456000, time.UTC),
	}
}

// recordingMailer records the emails it sent. failures makes the first
// sends fail; gate, when set, holds every send until it is closed, and
// entered receives a value each time a send starts.
type recordingMailer struct {
	mu       sync.Mutex
	sent     []event.Mail
	attempts int
	failures int
	gate     chan struct{}
	entered  chan struct{}
}

var errSMTPDown = errors.New("smtp: 421 service not available")

func (m *recordingMailer) Send(ctx context.Context, mail event.Mail) error {
	if m.entered != nil {
		select {
		case m.entered <- struct{}{}:
		default:
		}
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts++
	if m.attempts <= m.failures {
		return errSMTPDown
	}
	m.sent = append(m.sent, mail)
	return nil
}

func (m *recordingMailer) mails() []event.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]event.Mail(nil), m.sent...)
}

func (m *recordingMailer) attemptCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts
}

// memDeduplicator honours the event.Deduplicator contract in memory: one
// lock per (handler, key), held while the effect runs, so a concurrent second
// run waits for the first; the record is kept only when the effect succeeded.
type memDeduplicator struct {
	mu    sync.Mutex
	locks map[[2]string]*sync.Mutex
	done  map[[2]string]bool
	calls atomic.Int32
}

func newMemDeduplicator() *memDeduplicator {
	return &memDeduplicator{locks: map[[2]string]*sync.Mutex{}, done: map[[2]string]bool{}}
}

func (d *memDeduplicator) Once(ctx context.Context, handler, key string, effect func(ctx context.Context) error) error {
	d.calls.Add(1)
	id := [2]string{handler, key}
	d.mu.Lock()
	lock, ok := d.locks[id]
	if !ok {
		lock = &sync.Mutex{}
		d.locks[id] = lock
	}
	d.mu.Unlock()

	lock.Lock()
	defer lock.Unlock()
	d.mu.Lock()
	done := d.done[id]
	d.mu.Unlock()
	if done {
		return nil
	}
	if err := effect(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	d.done[id] = true
	d.mu.Unlock()
	return nil
}

func (d *memDeduplicator) records() map[[2]string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	records := map[[2]string]bool{}
	for id, done := range d.done {
		records[id] = done
	}
	return records
}

func welcomeHandler(mailer event.Mailer, dedup event.Deduplicator) cqrs.EventHandler {
	return cqrs.NewEventHandler(event.SendWelcomeEmailName, event.NewSendWelcomeEmail(mailer, dedup).Handle)
}

func TestSendWelcomeEmail_SendsOneEmailPerUser(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{}
	dedup := newMemDeduplicator()
	h.startRouter(nil, welcomeHandler(mailer, dedup))

	h.publish(registered("user-1", "Ada Lovelace", "Ada@Example.com"))
	h.publish(registered("user-2", "Grace Hopper", "grace@example.com"))

	require.Eventually(t, func() bool { return len(mailer.mails()) >= 2 }, waitTimeout, time.Millisecond)
	mails := mailer.mails()
	require.Len(t, mails, 2)
	for i, want := range []struct{ id, to string }{
		{"welcome.user-1", "Ada@Example.com"},
		{"welcome.user-2", "grace@example.com"},
	} {
		assert.Equal(t, want.id, mails[i].ID, "one id per user: a repeated send is the same email")
		assert.Equal(t, want.to, mails[i].To, "sent to the address as typed")
		assert.Equal(t, "Welcome to onboard", mails[i].Subject)
		assert.Equal(t, "Hello,\n\nwelcome to onboard! Your account is ready.\n", mails[i].Body)
	}
	assert.Equal(t, map[[2]string]bool{
		{event.SendWelcomeEmailName, "user-1"}: true,
		{event.SendWelcomeEmailName, "user-2"}: true,
	}, dedup.records(), "deduplicated per handler and user")
}

// TestSendWelcomeEmail_NeverSendsTheName: anyone may register any address
// with a name of their choosing, so a name in the email would let them
// send their own text from the service to anyone.
func TestSendWelcomeEmail_NeverSendsTheName(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{}
	h.startRouter(nil, welcomeHandler(mailer, newMemDeduplicator()))

	const hostile = "Your account was suspended, call +1 555 0100 http://evil.example"
	h.publish(registered("user-1", hostile, "victim@example.com"))

	require.Eventually(t, func() bool { return len(mailer.mails()) >= 1 }, waitTimeout, time.Millisecond)
	mail := mailer.mails()[0]
	assert.Equal(t, "victim@example.com", mail.To)
	for _, part := range []string{mail.Subject, mail.Body} {
		assert.NotContains(t, part, hostile)
		for _, word := range []string{"suspended", "555", "evil.example"} {
			assert.NotContains(t, part, word)
		}
	}
}

// redelivery is one way an event can reach a handler twice.
type redelivery struct {
	name    string
	deliver func(h *harness, e domain.UserRegistered)
}

// redeliveries are the ways every handler must withstand.
func redeliveries() []redelivery {
	return []redelivery{
		{
			name: "same event published twice",
			deliver: func(h *harness, e domain.UserRegistered) {
				h.publish(e)
				h.publish(e)
			},
		},
		{
			name: "same message delivered twice",
			deliver: func(h *harness, e domain.UserRegistered) {
				msg, err := transport.Marshaler.Marshal(e)
				require.NoError(h.t, err)
				h.publishMessage(msg)
				h.publishMessage(msg)
			},
		},
	}
}

func TestSendWelcomeEmail_Redelivery(t *testing.T) {
	tests := append(redeliveries(), redelivery{
		name: "event published again after other users",
		deliver: func(h *harness, e domain.UserRegistered) {
			h.publish(e)
			h.publish(registered("someone-else", "Grace", "grace@example.com"))
			h.publish(e)
		},
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			mailer := &recordingMailer{}
			dedup := newMemDeduplicator()
			h.startRouter(nil, welcomeHandler(mailer, dedup))
			e := registered("user-1", "Ada Lovelace", "ada@example.com")

			tt.deliver(h, e)

			var toAda []event.Mail
			for _, m := range mailer.mails() {
				if m.To == e.Email {
					toAda = append(toAda, m)
				}
			}
			assert.Len(t, toAda, 1, "one welcome email to the user")
			assert.GreaterOrEqual(t, int(dedup.calls.Load()), 2, "the redelivery reached the handler")
		})
	}
}

func TestSendWelcomeEmail_ConcurrentDeliveries(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	dedup := newMemDeduplicator()
	// Two instances of the service share the mailer and the deduplicator (the
	// database): every publish reaches both at the same time.
	h.startRouter(nil, welcomeHandler(mailer, dedup))
	h.startRouter(nil, welcomeHandler(mailer, dedup))
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	first := h.publishAsync(e)
	second := h.publishAsync(e)

	select {
	case <-mailer.entered:
	case <-time.After(waitTimeout):
		t.Fatal("no email was attempted")
	}
	// One run holds the key while its email is on its way; the other has
	// entered the deduplicator and waits for it.
	require.Eventually(t, func() bool { return dedup.calls.Load() >= 2 }, waitTimeout, time.Millisecond)
	close(mailer.gate)
	h.wait(first, "first publish")
	h.wait(second, "second publish")

	assert.Equal(t, int32(4), dedup.calls.Load(), "2 publishes x 2 instances")
	assert.Len(t, mailer.mails(), 1)
	assert.Equal(t, 1, mailer.attemptCount())
}

func TestSendWelcomeEmail_RetriesAFailedSend(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{failures: 1}
	dedup := newMemDeduplicator()
	results := &handlerResults{}
	h.startRouter(failingMiddleware(t, h.pubSub, results), welcomeHandler(mailer, dedup))
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	h.publish(e)

	errs := results.all()
	require.Len(t, errs, 2, "one failed run, one retry")
	assert.ErrorIs(t, errs[0], errSMTPDown, "the handler returns the mailer's error")
	assert.NoError(t, errs[1])
	assert.Equal(t, 2, mailer.attemptCount())
	require.Len(t, mailer.mails(), 1)
	assert.Equal(t, e.Email, mailer.mails()[0].To)

	h.publish(e)
	assert.Len(t, mailer.mails(), 1, "a redelivery after the retry sends nothing")
}

func TestSendWelcomeEmail_GivesUpToThePoisonQueue(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{failures: 1000}
	results := &handlerResults{}
	poisoned := h.poisoned()
	h.startRouter(failingMiddleware(t, h.pubSub, results), welcomeHandler(mailer, newMemDeduplicator()))

	done := h.publishAsync(registered("user-1", "Ada Lovelace", "ada@example.com"))

	select {
	case msg := <-poisoned:
		msg.Ack()
		assert.Contains(t, msg.Metadata.Get(middleware.ReasonForPoisonedKey), errSMTPDown.Error())
		assert.Equal(t, event.SendWelcomeEmailName, msg.Metadata.Get(middleware.PoisonedHandlerKey))
	case <-time.After(waitTimeout):
		t.Fatal("nothing reached the poison queue")
	}
	h.wait(done, "publish")
	assert.Equal(t, 3, mailer.attemptCount(), "1 run + 2 retries")
	assert.Empty(t, mailer.mails())
}

func TestSendWelcomeEmail_RejectsIncompleteEvents(t *testing.T) {
	tests := []struct {
		name  string
		event domain.UserRegistered
	}{
		{name: "missing user id", event: registered("", "Ada Lovelace", "ada@example.com")},
		{name: "missing email", event: registered("user-1", "Ada Lovelace", "")},
		{name: "empty event", event: domain.UserRegistered{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mailer := &recordingMailer{}
			dedup := newMemDeduplicator()

			t.Run("Handle", func(t *testing.T) {
				err := event.NewSendWelcomeEmail(mailer, dedup).Handle(context.Background(), &tt.event)
				require.Error(t, err)
				assert.Contains(t, err.Error(), event.SendWelcomeEmailName)
			})

			t.Run("on the router", func(t *testing.T) {
				h := newHarness(t)
				results := &handlerResults{}
				poisoned := h.poisoned()
				h.startRouter(failingMiddleware(t, h.pubSub, results), welcomeHandler(mailer, dedup))

				done := h.publishAsync(tt.event)
				select {
				case msg := <-poisoned:
					msg.Ack()
					assert.Contains(t, msg.Metadata.Get(middleware.ReasonForPoisonedKey), "without user id or email")
				case <-time.After(waitTimeout):
					t.Fatal("the incomplete event did not reach the poison queue")
				}
				h.wait(done, "publish")
				require.NotEmpty(t, results.all())
				for _, err := range results.all() {
					assert.Error(t, err)
				}
			})

			assert.Empty(t, mailer.mails())
			assert.Zero(t, dedup.calls.Load(), "nothing recorded for an incomplete event")
		})
	}
}
