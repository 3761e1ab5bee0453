package dedup_test

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/dedup"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// dedupWait bounds every wait of the deduplicator tests.
const dedupWait = 15 * time.Second

func processedCount(t *testing.T, db *testenv.DB, handler, key string) int {
	t.Helper()
	return db.Count(t, `SELECT count(*) FROM processed_messages WHERE handler = ? AND message_key = ?`, handler, key)
}

func TestDeduplicator_RunsEffectOncePerHandlerAndKey(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		dedup := dedup.NewDeduplicator(db.DB, nil)
		ctx := testenv.Context(t)
		runs := map[string]int{}
		effect := func(name string) func(context.Context) error {
			return func(context.Context) error {
				runs[name]++
				return nil
			}
		}

		for range 3 {
			require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H1", Key: "k1"}, effect("H1/k1")))
		}
		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H1", Key: "k2"}, effect("H1/k2")))
		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H2", Key: "k1"}, effect("H2/k1")))
		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H2", Key: "k1"}, effect("H2/k1")))

		assert.Equal(t, map[string]int{"H1/k1": 1, "H1/k2": 1, "H2/k1": 1}, runs)
		assert.Equal(t, 1, processedCount(t, db, "H1", "k1"))
		assert.Equal(t, 1, processedCount(t, db, "H1", "k2"))
		assert.Equal(t, 1, processedCount(t, db, "H2", "k1"))
	})
}

func TestDeduplicator_FailedEffectIsNotRecorded(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		dedup := dedup.NewDeduplicator(db.DB, nil)
		ctx := testenv.Context(t)
		errSMTPDown := errors.New("smtp: 451 try again later")
		runs := 0

		err := dedup.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(context.Context) error {
			runs++
			return errSMTPDown
		})
		require.ErrorIs(t, err, errSMTPDown, "the effect's error is returned")
		assert.Zero(t, processedCount(t, db, "H", "k"), "no record of a failed effect")

		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(context.Context) error {
			runs++
			return nil
		}))
		assert.Equal(t, 2, runs, "the retry runs the effect again")
		assert.Equal(t, 1, processedCount(t, db, "H", "k"))

		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(context.Context) error {
			runs++
			return nil
		}))
		assert.Equal(t, 2, runs, "a success is final")
	})
}

func TestDeduplicator_EffectGetsTheCallersContext(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		dedup := dedup.NewDeduplicator(db.DB, nil)
		type key struct{}
		ctx := context.WithValue(testenv.Context(t), key{}, "value")
		var got any
		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(ctx context.Context) error {
			got = ctx.Value(key{})
			return nil
		}))
		assert.Equal(t, "value", got)
	})
}

func TestDeduplicator_TakesOverAnExpiredClaim(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		dedup := dedup.NewDeduplicator(db.DB, nil)
		ctx := testenv.Context(t)
		// A run that crashed mid-effect left its claim, whose lease has run out.
		_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO processed_messages (handler, message_key, state, claimed_until_ms)
			VALUES ('H', 'k', 'claimed', ?)`), time.Now().Add(-time.Second).UnixMilli())
		require.NoError(t, err)

		runs := 0
		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(context.Context) error { runs++; return nil }))
		require.NoError(t, dedup.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(context.Context) error { runs++; return nil }))
		assert.Equal(t, 1, runs, "the expired claim is taken over once, then the key is done")
	})
}

func TestDeduplicator_ConcurrentSecondCallWaitsAndSkips(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		for _, firstFails := range []bool{false, true} {
			name := "first succeeds"
			if firstFails {
				name = "first fails"
			}
			t.Run(name, func(t *testing.T) {
				db := testenv.MigratedDB(t, backend)
				dedup := dedup.NewDeduplicator(db.DB, nil)
				ctx := testenv.Context(t)
				errFirst := errors.New("first effect failed")
				var effects atomic.Int32
				firstRunning := make(chan struct{})
				releaseFirst := make(chan struct{})

				firstDone := make(chan error, 1)
				go func() {
					firstDone <- dedup.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(context.Context) error {
						effects.Add(1)
						close(firstRunning)
						<-releaseFirst
						if firstFails {
							return errFirst
						}
						return nil
					})
				}()
				select {
				case <-firstRunning:
				case <-time.After(dedupWait):
					t.Fatal("the first effect did not start")
				}

				secondStarted := make(chan struct{})
				secondDone := make(chan error, 1)
				go func() {
					close(secondStarted)
					secondDone <- dedup.Once(ctx, event.Claim{Handler: "H", Key: "k"}, func(context.Context) error {
						effects.Add(1)
						return nil
					})
				}()
				<-secondStarted
				// The second call waits on the first one's claim: it neither
				// returns nor runs the effect while the first is running.
				require.Never(t, func() bool { return len(secondDone) > 0 || effects.Load() > 1 },
					500*time.Millisecond, 10*time.Millisecond, "the second call waits on the first one's claim")
				assert.Equal(t, int32(1), effects.Load())

				close(releaseFirst)
				for _, done := range []chan error{firstDone, secondDone} {
					select {
					case err := <-done:
						if firstFails && done == firstDone {
							assert.ErrorIs(t, err, errFirst)
						} else {
							assert.NoError(t, err)
						}
					case <-time.After(dedupWait):
						t.Fatal("a call did not return")
					}
				}

				if firstFails {
					// The record was never committed: the waiting call does the work.
					assert.Equal(t, int32(2), effects.Load(), "the second call runs the effect after the first failed")
				} else {
					assert.Equal(t, int32(1), effects.Load(), "the second call does not run the effect")
				}
				assert.Equal(t, 1, processedCount(t, db, "H", "k"))
			})
		}
	})
}

// A claim opens its event before the effect runs, taken over too; the
// event of an erased user or one that does not open runs nothing and
// leaves no claim.
func TestDeduplicator_OpensTheClaimsEvent(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		dedup := dedup.NewDeduplicator(db.DB, store)
		ctx := testenv.Context(t)
		emailOf := func(e *domain.UserRegistered, eventID, key string) (string, error) {
			var seen string
			err := dedup.Once(ctx, event.Claim{Handler: "H", Key: key, Event: e, EventID: eventID},
				func(context.Context) error { seen = e.Email; return nil })
			return seen, err
		}

		ada := testenv.RegisterUser(t, store, "ada@example.com")
		sealed, eventID := testenv.StoredRegistration(t, db, ada, 1)
		require.NotContains(t, sealed.Email, "example")
		seen, err := emailOf(sealed, eventID, ada)
		require.NoError(t, err)
		assert.Equal(t, "ada@example.com", seen)

		bob := testenv.RegisterUser(t, store, "bob@example.com")
		_, err = db.ExecContext(ctx, db.Rebind(`INSERT INTO processed_messages (handler, message_key, state, claimed_until_ms)
			VALUES ('H', ?, 'claimed', 0)`), bob) // a crashed run's claim
		require.NoError(t, err)
		sealed, eventID = testenv.StoredRegistration(t, db, bob, 1)
		seen, err = emailOf(sealed, eventID, bob)
		require.NoError(t, err)
		assert.Equal(t, "bob@example.com", seen, "taken over")

		eve := testenv.RegisterUser(t, store, "eve@example.com")
		sealed, eventID = testenv.StoredRegistration(t, db, eve, 1)
		_, err = emailOf(sealed, uuid.NewString(), eve)
		require.ErrorIs(t, err, domain.ErrCorruptData, "bound to its own event's id")
		assert.Zero(t, processedCount(t, db, "H", eve), "released")

		testenv.EraseUser(t, store, eve)
		seen, err = emailOf(sealed, eventID, eve)
		require.ErrorIs(t, err, domain.ErrUserErased)
		assert.Empty(t, seen, "nothing ran")
		assert.Zero(t, processedCount(t, db, "H", eve), "released")
	})
}
