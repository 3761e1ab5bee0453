package messages_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
	"github.com/onboard/onboard/ports/messages"
)

// The router's behaviour is tested with the service's own handlers
// (app/event) on the fakes of internal/testfake: its middleware, failure
// classes, quick retries, poison and retry queues, redeliveries. What a
// handler does with its event is tested in app/event, on the fakes alone.

// waitTimeout bounds every wait of these tests; nothing here should take
// more than a fraction of it.
const waitTimeout = 10 * time.Second

// deploymentID is the test deployment's; its events carry it, as the
// forwarder marks them.
const deploymentID = "test-deployment"

// harness is the service's gochannel transport (publish blocks until every
// subscriber acked), publishing through a cqrs.EventBus as the forwarder
// does, on which tests start instances of the service's handler router.
type harness struct {
	t         *testing.T
	transport *transport.Transport
	publisher message.Publisher
	bus       *cqrs.EventBus
	retries   *transport.RetryQueue
}

// newHarness is a harness whose retry queue is on a database shared by
// the tests that put nothing in it.
func newHarness(t *testing.T) *harness {
	t.Helper()
	return newHarnessOn(t, sharedDB(t))
}

// newHarnessOn is a harness whose retry queue is on db.
func newHarnessOn(t *testing.T, db *sql.DB) *harness {
	t.Helper()
	tr, err := transport.NewTransport(transport.Config{Kind: transport.KindGoChannel})
	require.NoError(t, err)
	// Cleanups run last-in first-out: routers close first, then the
	// transport, which also releases a publish still waiting for an ack.
	t.Cleanup(func() { assert.NoError(t, tr.Close()) })
	// The retry queue's first wait is short, as the router's quick
	// retries are.
	retries, err := transport.NewRetryQueue(transport.RetryQueueConfig{
		DB: db, Publisher: tr.Publisher, FirstDelay: 20 * time.Millisecond, MaxDelay: 100 * time.Millisecond,
	})
	require.NoError(t, err)
	publisher := transport.StampOrigin(tr.Publisher, deploymentID)
	bus, err := cqrs.NewEventBusWithConfig(publisher, cqrs.EventBusConfig{
		GeneratePublishTopic: func(p cqrs.GenerateEventPublishTopicParams) (string, error) {
			return transport.EventTopic(p.EventName), nil
		},
		OnPublish: func(p cqrs.OnEventSendParams) error {
			return transport.SetSchemaVersion(domain.Events, p.EventName, p.Message)
		},
		Marshaler: transport.NewMarshaler(domain.Events),
	})
	require.NoError(t, err)
	return &harness{t: t, transport: tr, publisher: publisher, bus: bus, retries: retries}
}

// shared is one migrated SQLite database for the tests' retry queues:
// migrating one takes a tenth of a second under the race detector, longer
// than most of these tests. A message waits in a retry queue only after a
// failure of its own (app.FailureMessage): a test that makes one, or reads
// the queue, has a database of its own (newHarnessOn).
var shared struct {
	once sync.Once
	dir  string
	db   *sql.DB
	err  error
}

func sharedDB(t *testing.T) *sql.DB {
	t.Helper()
	shared.once.Do(func() {
		if shared.dir, shared.err = os.MkdirTemp("", "messages-test-"); shared.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		shared.db, shared.err = sqldb.Open(ctx, "sqlite:"+filepath.Join(shared.dir, "onboard.db"), slog.New(slog.DiscardHandler))
	})
	require.NoError(t, shared.err, "the shared test database")
	return shared.db
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.db != nil {
		_ = shared.db.Close()
	}
	if shared.dir != "" {
		_ = os.RemoveAll(shared.dir)
	}
	os.Exit(code)
}

// startRouter runs one instance of the service's handler router with the
// given handlers, and stops it at the end of the test as the service does.
// It returns once the handlers have subscribed.
func (h *harness) startRouter(handlers ...cqrs.EventHandler) {
	t := h.t
	t.Helper()
	stopping, stop := context.WithCancel(context.Background())
	router, err := messages.NewRouter(messages.RouterConfig{
		Transport:    h.transport,
		Retries:      h.retries,
		Users:        everyUser{},
		DeploymentID: deploymentID,
		Events:       domain.Events,
		Stopping:     stopping,
		Logger:       slog.New(slog.DiscardHandler),
		// Production's retries, of the same failures, with shorter waits.
		Retry: messages.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond},
	}, handlers, nil)
	require.NoError(t, err)

	stopped := make(chan error, 1)
	go func() { stopped <- router.Run(context.Background()) }()
	t.Cleanup(func() {
		stop()
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

// runRetries gives the retry queue's due messages back to their handlers
// until the test ends. Call it after startRouter: it stops first.
func (h *harness) runRetries() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.retries.Run(ctx)
	}()
	h.t.Cleanup(func() {
		cancel()
		<-done
	})
}

// publishAsync publishes e on the event bus. The transport blocks a publish
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

// publishMessage publishes an already marshalled message on
// UserRegistered's topic: the very same message, UUID included, when
// called twice, as a redelivery would.
func (h *harness) publishMessage(msg *message.Message) {
	h.t.Helper()
	h.publishMessageOn(transport.EventTopic("UserRegistered"), msg)
}

// publishMessageOn is publishMessage on another topic.
func (h *harness) publishMessageOn(topic string, msg *message.Message) {
	h.t.Helper()
	done := make(chan error, 1)
	go func() { done <- h.publisher.Publish(topic, msg) }()
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

// poisoned subscribes to the poison topic; each message received must be
// acked.
func (h *harness) poisoned() <-chan *message.Message {
	h.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	h.t.Cleanup(cancel)
	sub, err := h.transport.Subscriber(transport.PoisonGroup, transport.PoisonTopic)
	require.NoError(h.t, err)
	messages, err := sub.Subscribe(ctx, transport.PoisonTopic)
	require.NoError(h.t, err)
	return messages
}

// handlerResults records what each run of a handler returned.
type handlerResults struct {
	mu   sync.Mutex
	errs []error
}

// record wraps handler so that each of its runs is recorded; the router
// around it is unchanged.
func (r *handlerResults) record(handler cqrs.EventHandler) cqrs.EventHandler {
	return recordedHandler{EventHandler: handler, results: r}
}

func (r *handlerResults) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}

type recordedHandler struct {
	cqrs.EventHandler
	results *handlerResults
}

func (h recordedHandler) Handle(ctx context.Context, e any) error {
	err := h.EventHandler.Handle(ctx, e)
	h.results.mu.Lock()
	h.results.errs = append(h.results.errs, err)
	h.results.mu.Unlock()
	return err
}

// registered is a UserRegistered event at a fixed time.
var registered = testfake.Registered
