package messages_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/ports/messages"
)

// A handler gets its event as stored, with the message's id as the
// context's event id. An event it finds of an erased user is acked with a
// line naming the user: not retried, not poisoned, and the next message
// comes.
func TestNewRouter_AcksTheEventsOfErasedUsers(t *testing.T) {
	const handler = "GreetOnUserRegistered"
	tr, err := transport.NewTransport(transport.Config{Kind: transport.KindGoChannel})
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, tr.Close()) })
	db := testenv.MigratedDB(t, testenv.Backends()[0])
	retries, err := transport.NewRetryQueue(transport.RetryQueueConfig{DB: db.DB, Publisher: tr.Publisher})
	require.NoError(t, err)
	poisoned, err := tr.Subscriber("poison-watch", transport.PoisonTopic)
	require.NoError(t, err)
	poison, err := poisoned.Subscribe(t.Context(), transport.PoisonTopic)
	require.NoError(t, err)

	erased, live := uuid.NewString(), uuid.NewString()
	type received struct{ eventID, name string }
	var (
		mu  sync.Mutex
		got = map[string][]received{}
	)
	greet := func(ctx context.Context, e *domain.UserRegistered) error {
		mu.Lock()
		got[e.UserID] = append(got[e.UserID], received{eventID: app.EventID(ctx), name: e.Name})
		mu.Unlock()
		if e.UserID == erased {
			return fmt.Errorf("open the event: %w", domain.ErrUserErased)
		}
		return nil
	}
	var log testenv.LockedBuffer
	stopping, stop := context.WithCancel(context.Background())
	router, err := messages.NewRouter(messages.RouterConfig{
		Transport: tr, Retries: retries, Users: everyUser{}, DeploymentID: "test", Events: domain.Events,
		Stopping: stopping, Logger: slog.New(slog.NewJSONHandler(&log, nil)),
	}, []cqrs.EventHandler{cqrs.NewEventHandler(handler, greet)}, nil)
	require.NoError(t, err)
	runRouter(t, router, stop)

	publish := func(userID string) string {
		msg, err := transport.NewMarshaler(domain.Events).Marshal(&domain.UserRegistered{UserID: userID, Name: "v1:sealed"})
		require.NoError(t, err)
		require.NoError(t, transport.StampOrigin(tr.Publisher, "test").Publish(transport.EventTopic("UserRegistered"), msg))
		return msg.UUID
	}
	erasedID := publish(erased)
	liveID := publish(live)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got[live]) == 1
	}, 10*time.Second, 10*time.Millisecond, "the next message came")
	mu.Lock()
	assert.Equal(t, map[string][]received{erased: {{erasedID, "v1:sealed"}}, live: {{liveID, "v1:sealed"}}}, got,
		"each once, as stored, with its id")
	mu.Unlock()
	select {
	case msg := <-poison:
		t.Fatalf("poisoned: %s", msg.Metadata)
	default:
	}
	assert.Zero(t, db.Count(t, `SELECT count(*) FROM message_retries`), "nothing to retry")
	var lines []map[string]any
	for _, line := range testenv.JSONRecords(t, log.String()) {
		if line["msg"] == "event of an erased user acked unhandled: its key is gone" {
			lines = append(lines, line)
		}
	}
	require.Len(t, lines, 1)
	assert.Equal(t, erased, lines[0]["user_id"])
	assert.Equal(t, erasedID, lines[0]["message_uuid"])
	assert.NotContains(t, log.String(), "sealed", "no field of the event in the log")
}
