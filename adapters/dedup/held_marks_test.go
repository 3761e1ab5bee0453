package dedup_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/dedup"
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

// On PostgreSQL a "done" mark waits for the next claim, and goes with it:
// a run of this process or of another that claims the key meanwhile
// skips the effect all the same, and the stop writes what is held.
func TestDeduplicator_HeldMarkGoesWithTheNextClaim(t *testing.T) {
	db := testenv.StoreDB(t, postgresBackend())
	store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
	once := dedup.HoldMarksFor(dedup.NewDeduplicator(db.DB, store), time.Hour)
	ctx := testenv.Context(t)
	var effects atomic.Int32
	effect := func(context.Context) error { effects.Add(1); return nil }

	require.NoError(t, once.Once(ctx, event.Claim{Handler: "H", Key: "k1"}, effect))
	assert.Equal(t, "claimed", stateOf(t, db, "H", "k1"), "the mark is held")

	// Another process's run waits on the live claim...
	replica := dedup.NewDeduplicator(db.DB, nil)
	replicaDone := make(chan error, 1)
	go func() { replicaDone <- replica.Once(ctx, event.Claim{Handler: "H", Key: "k1"}, effect) }()
	require.Never(t, func() bool { return len(replicaDone) > 0 }, 300*time.Millisecond, 10*time.Millisecond,
		"the other process waits while the claim is live")

	// ...until this process's next claim writes the mark.
	require.NoError(t, once.Once(ctx, event.Claim{Handler: "H", Key: "k2"}, effect))
	assert.Equal(t, "done", stateOf(t, db, "H", "k1"), "written with k2's claim")
	select {
	case err := <-replicaDone:
		require.NoError(t, err)
	case <-time.After(dedupWait):
		t.Fatal("the other process's run did not return")
	}
	assert.Equal(t, int32(2), effects.Load(), "k1 and k2 once each")

	// A run of this process on a held key carries its mark, and skips.
	require.NoError(t, once.Once(ctx, event.Claim{Handler: "H", Key: "k2"}, effect))
	assert.Equal(t, "done", stateOf(t, db, "H", "k2"))
	assert.Equal(t, int32(2), effects.Load())

	// A claim that reads the user's key carries the marks too, and still
	// opens its event.
	ada := testenv.RegisterUser(t, store, "ada@example.com")
	sealed, eventID := testenv.StoredRegistration(t, db, ada, 1)
	var seen string
	require.NoError(t, once.Once(ctx, event.Claim{Handler: "H", Key: "k3"}, effect))
	require.NoError(t, once.Once(ctx, event.Claim{Handler: "H", Key: ada, Event: sealed, EventID: eventID},
		func(context.Context) error { seen = sealed.Email; return nil }))
	assert.Equal(t, "ada@example.com", seen)
	assert.Equal(t, "done", stateOf(t, db, "H", "k3"), "written with the claim that read the key")

	require.NoError(t, once.Close())
	assert.Equal(t, "done", stateOf(t, db, "H", ada), "the stop writes the marks held")
}

// A held mark that no claim takes is written within a few milliseconds.
func TestDeduplicator_HeldMarkIsWrittenWithoutAnotherClaim(t *testing.T) {
	db := testenv.MigratedDB(t, postgresBackend())
	once := dedup.NewDeduplicator(db.DB, nil)
	ctx := testenv.Context(t)

	require.NoError(t, once.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(context.Context) error { return nil }))
	require.Eventually(t, func() bool { return stateOf(t, db, "H", "k") == "done" }, dedupWait, 5*time.Millisecond)
}

// A claim that fails loses none of the marks it carried: they are
// written with the next one, or at the stop.
func TestDeduplicator_HeldMarksOutliveAFailedClaim(t *testing.T) {
	db := testenv.MigratedDB(t, postgresBackend())
	once := dedup.HoldMarksFor(dedup.NewDeduplicator(db.DB, nil), time.Hour)
	ctx := testenv.Context(t)
	effect := func(context.Context) error { return nil }

	require.NoError(t, once.Once(ctx, event.Claim{Handler: "H", Key: "k1"}, effect))
	// PostgreSQL refuses a NUL in text: the claim and the marks with it fail.
	require.Error(t, once.Once(ctx, event.Claim{Handler: "H", Key: "bad\x00key"}, effect))
	assert.Equal(t, "claimed", stateOf(t, db, "H", "k1"), "not written by the failed claim")

	require.NoError(t, once.Close())
	assert.Equal(t, "done", stateOf(t, db, "H", "k1"), "held still, and written at the stop")
}
