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

// messagesInOneTransaction publishes n messages on a topic of the sql
// transport and subscribes to them: the subscriber hands them over one by
// one, each once the one before was acked, in the one transaction that
// acks them all.
func messagesInOneTransaction(t *testing.T, db *testenv.DB, n int) <-chan *message.Message {
	ctx := testenv.Context(t)
	subscriber, err := watermillsql.NewSQLSubscriber(db.DB, "marks", watermill.NopLogger{})
	require.NoError(t, err)
	t.Cleanup(func() { _ = subscriber.Close() })
	topic := testenv.Name("marks")
	require.NoError(t, subscriber.SubscribeInitialize(topic))
	publisher, err := wsql.NewPublisher(wsql.BeginnerFromStdSQL(db.DB), wsql.PublisherConfig{
		SchemaAdapter: watermillsql.SchemaAdapter(db.DB),
	}, watermill.NopLogger{})
	require.NoError(t, err)
	for range n {
		require.NoError(t, publisher.Publish(topic, message.NewMessage(watermill.NewUUID(), []byte(`{}`))))
	}
	messages, err := subscriber.Subscribe(ctx, topic)
	require.NoError(t, err)
	return messages
}

func next(t *testing.T, messages <-chan *message.Message) *message.Message {
	t.Helper()
	select {
	case msg := <-messages:
		return msg
	case <-time.After(dedupWait):
		t.Fatal("no message on the subscription")
		return nil
	}
}

// On the sql transport a message's "done" mark is held until the
// transaction that acks it ends, and goes with the next claim meanwhile:
// a run of this process or of another that claims the key meanwhile
// skips the effect all the same.
func TestDeduplicator_HeldMarkGoesWithTheNextClaim(t *testing.T) {
	db := testenv.StoreDB(t, postgresBackend())
	store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
	once := dedup.HoldMarksFor(dedup.NewDeduplicator(db.DB, store), time.Hour)
	ctx := testenv.Context(t)
	var effects atomic.Int32
	effect := func(context.Context) error { effects.Add(1); return nil }
	messages := messagesInOneTransaction(t, db, 3)

	first := next(t, messages)
	require.NoError(t, once.Once(first.Context(), event.Claim{Handler: "H", Key: "k1"}, effect))
	assert.Equal(t, "claimed", stateOf(t, db, "H", "k1"), "the mark is held")
	// Another process's run waits on the live claim.
	replica := make(chan error, 1)
	go func() {
		replica <- dedup.NewDeduplicator(db.DB, nil).Once(ctx, event.Claim{Handler: "H", Key: "k1"}, effect)
	}()
	require.Never(t, func() bool { return len(replica) > 0 }, 300*time.Millisecond, 10*time.Millisecond,
		"the other process waits while the claim is live")
	first.Ack()

	// The next claim, one that reads the user's key, writes the mark and
	// still opens its event.
	ada := testenv.RegisterUser(t, store, "ada@example.com")
	sealed, eventID := testenv.StoredRegistration(t, db, ada, 1)
	second := next(t, messages)
	var seen string
	require.NoError(t, once.Once(second.Context(), event.Claim{Handler: "H", Key: ada, Event: sealed, EventID: eventID},
		func(context.Context) error { seen = sealed.Email; return nil }))
	assert.Equal(t, "ada@example.com", seen)
	assert.Equal(t, "done", stateOf(t, db, "H", "k1"), "written with the next claim")
	select {
	case err := <-replica:
		require.NoError(t, err)
	case <-time.After(dedupWait):
		t.Fatal("the other process's run did not return")
	}
	assert.Equal(t, "claimed", stateOf(t, db, "H", ada), "held in turn")
	second.Ack()

	// A run of this process on a held key carries its mark, and skips.
	third := next(t, messages)
	require.NoError(t, once.Once(third.Context(), event.Claim{Handler: "H", Key: ada}, effect))
	assert.Equal(t, "done", stateOf(t, db, "H", ada))
	assert.Equal(t, int32(1), effects.Load(), "k1 once; ada's run skipped")
	third.Ack()
}

// heldMarksOnSQL is a deduplicator holding its marks for an hour, and n
// messages in one transaction of the sql transport.
func heldMarksOnSQL(t *testing.T, n int) (*testenv.DB, dedup.Deduplicator, <-chan *message.Message) {
	db := testenv.MigratedDB(t, postgresBackend())
	return db, dedup.HoldMarksFor(dedup.NewDeduplicator(db.DB, nil), time.Hour), messagesInOneTransaction(t, db, n)
}

// claimOf runs an effect that does nothing for key, in msg's transaction.
func claimOf(once dedup.Deduplicator, msg *message.Message, key string) error {
	return once.Once(msg.Context(), event.Claim{Handler: "H", Key: key}, func(context.Context) error { return nil })
}

func requireDoneOnceEnded(t *testing.T, db *testenv.DB, key, why string) {
	t.Helper()
	require.Eventually(t, func() bool { return stateOf(t, db, "H", key) == "done" }, dedupWait, 5*time.Millisecond, why)
}

// What no claim took is written before the transaction ends, or at the
// stop, whichever comes first.
func TestDeduplicator_HeldMarkIsWrittenBeforeTheAck(t *testing.T) {
	db, once, messages := heldMarksOnSQL(t, 2)

	first := next(t, messages)
	require.NoError(t, claimOf(once, first, "k1"))
	require.NoError(t, once.Close())
	assert.Equal(t, "done", stateOf(t, db, "H", "k1"), "the stop writes the marks held")
	first.Ack()

	second := next(t, messages)
	require.NoError(t, claimOf(once, second, "k2"))
	assert.Equal(t, "claimed", stateOf(t, db, "H", "k2"))
	second.Ack()
	requireDoneOnceEnded(t, db, "k2", "written as the transaction that acks the message ends")
}

// A claim that fails loses none of the marks it carried.
func TestDeduplicator_HeldMarksOutliveAFailedClaim(t *testing.T) {
	db, once, messages := heldMarksOnSQL(t, 2)

	first := next(t, messages)
	require.NoError(t, claimOf(once, first, "k1"))
	first.Ack()
	second := next(t, messages)
	// PostgreSQL refuses a NUL in text: the claim and the marks with it fail.
	require.Error(t, claimOf(once, second, "bad\x00key"))
	assert.Equal(t, "claimed", stateOf(t, db, "H", "k1"), "not written by the failed claim")
	second.Ack()
	requireDoneOnceEnded(t, db, "k1", "held still, and written as the transaction ends")
}

// A message that does not come in the transaction that acks it (any
// other transport) has its mark written before its run returns.
func TestDeduplicator_MarkOutsideATransactionIsWrittenAtOnce(t *testing.T) {
	db := testenv.MigratedDB(t, postgresBackend())
	once := dedup.HoldMarksFor(dedup.NewDeduplicator(db.DB, nil), time.Hour)

	require.NoError(t, once.Once(testenv.Context(t), event.Claim{Handler: "H", Key: "k"}, func(context.Context) error { return nil }))
	assert.Equal(t, "done", stateOf(t, db, "H", "k"))
}
