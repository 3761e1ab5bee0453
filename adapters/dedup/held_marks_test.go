package dedup_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/dedup"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/testenv"
)

func postgresBackend() testenv.Backend { return testenv.Backends()[1] }

func stateOf(t *testing.T, db *testenv.DB, handler, key string) string {
	t.Helper()
	var state string
	require.NoError(t, db.QueryRowContext(testenv.Context(t), db.Rebind(
		`SELECT state FROM processed_messages WHERE handler = ? AND message_key = ?`), handler, key).Scan(&state))
	return state
}

// onceAsync runs once.Once for key in a goroutine; its error comes on the
// channel.
func onceAsync(ctx context.Context, once dedup.Deduplicator, c event.Claim, effect func(context.Context) error) <-chan error {
	done := make(chan error, 1)
	go func() { done <- once.Once(ctx, c, effect) }()
	return done
}

func requireReturns(t *testing.T, done <-chan error, what string) {
	t.Helper()
	select {
	case err := <-done:
		require.NoError(t, err, what)
	case <-time.After(dedupWait):
		t.Fatalf("%s: did not return", what)
	}
}

func requireWaits(t *testing.T, done <-chan error, what string) {
	t.Helper()
	require.Never(t, func() bool { return len(done) > 0 }, 300*time.Millisecond, 10*time.Millisecond, what)
}

// On PostgreSQL a run waits for its "done" mark, which goes with the next
// claim of the process: a run of this process or of another that claims
// the key meanwhile skips the effect all the same, and the stop writes
// what is held.
func TestDeduplicator_HeldMarkGoesWithTheNextClaim(t *testing.T) {
	db := testenv.StoreDB(t, postgresBackend())
	store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
	once := dedup.HoldMarksFor(dedup.NewDeduplicator(db.DB, store), time.Hour)
	ctx := testenv.Context(t)
	var effects atomic.Int32
	effect := func(context.Context) error { effects.Add(1); return nil }

	first := onceAsync(ctx, once, event.Claim{Handler: "H", Key: "k1"}, effect)
	requireWaits(t, first, "the run waits for its mark")
	assert.Equal(t, "claimed", stateOf(t, db, "H", "k1"), "the mark is held")
	// Another process's run waits on the live claim.
	replica := onceAsync(ctx, dedup.NewDeduplicator(db.DB, nil), event.Claim{Handler: "H", Key: "k1"}, effect)
	requireWaits(t, replica, "the other process waits while the claim is live")

	// The next claim writes the mark: both runs return, the effect once.
	second := onceAsync(ctx, once, event.Claim{Handler: "H", Key: "k2"}, effect)
	requireReturns(t, first, "the run whose mark went with the next claim")
	assert.Equal(t, "done", stateOf(t, db, "H", "k1"))
	requireReturns(t, replica, "the other process's run")
	requireWaits(t, second, "the second run waits for its own mark")

	// A run of this process on a held key carries its mark, and skips.
	requireReturns(t, onceAsync(ctx, once, event.Claim{Handler: "H", Key: "k2"}, effect), "a run on a held key")
	requireReturns(t, second, "the run whose key was claimed again")
	assert.Equal(t, "done", stateOf(t, db, "H", "k2"))
	assert.Equal(t, int32(2), effects.Load(), "k1 and k2 once each")

	// A claim that reads the user's key carries the marks too, and still
	// opens its event.
	ada := testenv.RegisterUser(t, store, "ada@example.com")
	sealed, eventID := testenv.StoredRegistration(t, db, ada, 1)
	third := onceAsync(ctx, once, event.Claim{Handler: "H", Key: "k3"}, effect)
	requireWaits(t, third, "the third run waits for its mark")
	var seen atomic.Value
	fourth := onceAsync(ctx, once, event.Claim{Handler: "H", Key: ada, Event: sealed, EventID: eventID},
		func(context.Context) error { seen.Store(sealed.Email); return nil })
	requireReturns(t, third, "the run whose mark went with a claim that read the user's key")
	assert.Equal(t, "done", stateOf(t, db, "H", "k3"))
	requireWaits(t, fourth, "the fourth run waits for its mark")
	assert.Equal(t, "ada@example.com", seen.Load())

	require.NoError(t, once.Close())
	requireReturns(t, fourth, "the run whose mark the stop wrote")
	assert.Equal(t, "done", stateOf(t, db, "H", ada))
}

// A mark that no claim takes is written within a few milliseconds: the
// run returns with it written.
func TestDeduplicator_HeldMarkIsWrittenWithoutAnotherClaim(t *testing.T) {
	db := testenv.MigratedDB(t, postgresBackend())
	once := dedup.NewDeduplicator(db.DB, nil)
	ctx := testenv.Context(t)

	require.NoError(t, once.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(context.Context) error { return nil }))
	assert.Equal(t, "done", stateOf(t, db, "H", "k"))
}

// A claim that fails loses none of the marks it carried: they are
// written with the next one, or at the stop.
func TestDeduplicator_HeldMarksOutliveAFailedClaim(t *testing.T) {
	db := testenv.MigratedDB(t, postgresBackend())
	once := dedup.HoldMarksFor(dedup.NewDeduplicator(db.DB, nil), time.Hour)
	ctx := testenv.Context(t)
	effect := func(context.Context) error { return nil }

	first := onceAsync(ctx, once, event.Claim{Handler: "H", Key: "k1"}, effect)
	requireWaits(t, first, "the run waits for its mark")
	// PostgreSQL refuses a NUL in text: the claim and the marks with it fail.
	require.Error(t, once.Once(ctx, event.Claim{Handler: "H", Key: "bad\x00key"}, effect))
	requireWaits(t, first, "the failed claim did not write the mark")
	assert.Equal(t, "claimed", stateOf(t, db, "H", "k1"))

	require.NoError(t, once.Close())
	requireReturns(t, first, "the run whose mark the stop wrote")
	assert.Equal(t, "done", stateOf(t, db, "H", "k1"))
}

// A message handed over in the transaction that acks it (the sql
// transport) does not wait for its mark: the mark is written before that
// transaction ends, at the latest.
func TestDeduplicator_MarkOfAMessageInATransactionIsWrittenBeforeItsAck(t *testing.T) {
	db := testenv.MigratedDB(t, postgresBackend())
	once := dedup.HoldMarksFor(dedup.NewDeduplicator(db.DB, nil), time.Hour)
	ctx := testenv.Context(t)
	subscriber, err := watermillsql.NewSQLSubscriber(db.DB, "marks", watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = subscriber.Close() })
	topic := testenv.Name("marks")
	messages, err := subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	publisher, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(db.DB), wsql.PublisherConfig{
		SchemaAdapter: watermillsql.SchemaAdapter(db.DB),
	}, watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(`{}`))))

	var msg *message.Message
	select {
	case msg = <-messages:
	case <-time.After(dedupWait):
		t.Fatal("no message on the subscription")
	}
	requireReturns(t, onceAsync(msg.Context(), once, event.Claim{Handler: "H", Key: "k"},
		func(context.Context) error { return nil }), "the run, its mark held")
	assert.Equal(t, "claimed", stateOf(t, db, "H", "k"), "held until the ack")
	msg.Ack()
	require.Eventually(t, func() bool { return stateOf(t, db, "H", "k") == "done" }, dedupWait, 5*time.Millisecond,
		"written before the transaction that acks the message committed")
}
