package messages_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/ports/messages"
)

// prefixOpener "opens" a name by dropping its "sealed:" prefix, and counts
// the events it is asked to open (a read of the user's key each, in the
// service).
type prefixOpener struct {
	mu     sync.Mutex
	opened int
}

func (o *prefixOpener) OpenEvent(_ context.Context, _ string, e domain.Event) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opened++
	if u, ok := e.(*domain.UserRegistered); ok {
		u.Name = strings.TrimPrefix(u.Name, "sealed:")
	}
	return nil
}

func (o *prefixOpener) count() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.opened
}

// A handler that reads no personal field gets its events as stored, and
// costs no opening; the others get them opened.
func TestNewRouter_OpensEventsForTheHandlersThatReadPersonalFields(t *testing.T) {
	const greeter, counter = "GreetOnUserRegistered", "CountOnUserRegistered"
	tr, err := transport.NewTransport(transport.TransportConfig{Kind: transport.TransportGoChannel})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Close()) })
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	retries, err := transport.NewRetryQueue(transport.RetryQueueConfig{DB: db.DB, Publisher: tr.Publisher})
	require.NoError(t, err)

	var (
		mu       sync.Mutex
		received = map[string]string{} // the name each handler got
	)
	record := func(handler string) func(context.Context, *domain.UserRegistered) error {
		return func(_ context.Context, e *domain.UserRegistered) error {
			mu.Lock()
			defer mu.Unlock()
			received[handler] = e.Name
			return nil
		}
	}
	opener := &prefixOpener{}
	stopping, stop := context.WithCancel(context.Background())
	router, err := messages.NewRouter(messages.RouterConfig{
		Transport: tr, Retries: retries, Users: everyUser{}, DeploymentID: "test", Events: domain.Events,
		Opener: opener, ReadNoPersonalData: []string{counter}, Stopping: stopping, Logger: slog.New(slog.DiscardHandler),
	}, []cqrs.EventHandler{
		cqrs.NewEventHandler(greeter, record(greeter)),
		cqrs.NewEventHandler(counter, record(counter)),
	}, nil)
	require.NoError(t, err)
	runRouter(t, router, stop)

	msg, err := transport.Marshaler.Marshal(&domain.UserRegistered{UserID: uuid.NewString(), Name: "sealed:Ada"})
	require.NoError(t, err)
	require.NoError(t, transport.StampOrigin(tr.Publisher, "test").Publish(transport.EventTopic("UserRegistered"), msg))

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(received) == 2
	}, 10*time.Second, 10*time.Millisecond, "both handlers ran")
	assert.Equal(t, map[string]string{greeter: "Ada", counter: "sealed:Ada"}, received)
	assert.Equal(t, 1, opener.count(), "opened for the greeter alone")
}
