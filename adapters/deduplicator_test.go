package adapters_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/internal/testenv"
)

// dedupWait bounds every wait of the deduplicator tests.
const dedupWait = 15 * time.Second

func processedCount(t *testing.T, db *testenv.DB, handler, key string) int {
	t.Helper()
	return db.Count(t, `SELECT count(*) FROM processed_messages WHERE handler = ? AND message_key = ?`, handler, key)
}

func TestDeduplicator_RunsEffectOncePerHandlerAndKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		dedup := adapters.NewDeduplicator(db.DB)
		ctx := testTimeoutCtx(t)
		runs := map[string]int{}
		effect := func(name string) func(context.Context) error {
			return func(context.Context) error {
				runs[name]++
				return nil
			}
		}

		for range 3 {
			require.NoError(t, dedup.Once(ctx, "H1", "k1", effect("H1/k1")))
		}
		require.NoError(t, dedup.Once(ctx, "H1", "k2", effect("H1/k2")))
		require.NoError(t, dedup.Once(ctx, "H2", "k1", effect("H2/k1")))
		require.NoError(t, dedup.Once(ctx, "H2", "k1", effect("H2/k1")))

		assert.Equal(t, map[string]int{"H1/k1": 1, "H1/k2": 1, "H2/k1": 1}, runs)
		assert.Equal(t, 1, processedCount(t, db, "H1", "k1"))
		assert.Equal(t, 1, processedCount(t, db, "H1", "k2"))
		assert.Equal(t, 1, processedCount(t, db, "H2", "k1"))
	})
}

func TestDeduplicator_FailedEffectIsNotRecorded(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		dedup := adapters.NewDeduplicator(db.DB)
		ctx := testTimeoutCtx(t)
		errSMTPDown := errors.New("smtp: 451 try again later")
		runs := 0

		err := dedup.Once(ctx, "H", "k", func(context.Context) error {
			runs++
			return errSMTPDown
		})
		require.ErrorIs(t, err, errSMTPDown, "the effect's error is returned")
		assert.Zero(t, processedCount(t, db, "H", "k"), "no record of a failed effect")

		require.NoError(t, dedup.Once(ctx, "H", "k", func(context.Context) error {
			runs++
			return nil
		}))
		assert.Equal(t, 2, runs, "the retry runs the effect again")
		assert.Equal(t, 1, processedCount(t, db, "H", "k"))

		require.NoError(t, dedup.Once(ctx, "H", "k", func(context.Context) error {
			runs++
			return nil
		}))
		assert.Equal(t, 2, runs, "a success is final")
	})
}

func TestDeduplicator_EffectGetsTheCallersContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		dedup := adapters.NewDeduplicator(db.DB)
		type key struct{}
		ctx := context.WithValue(testTimeoutCtx(t), key{}, "value")
		var got any
		require.NoError(t, dedup.Once(ctx, "H", "k", func(ctx context.Context) error {
			got = ctx.Value(key{})
			return nil
		}))
		assert.Equal(t, "value", got)
	})
}

func TestDeduplicator_TakesOverAnExpiredClaim(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		dedup := adapters.NewDeduplicator(db.DB)
		ctx := testTimeoutCtx(t)
		// A run that crashed mid-effect left its claim, whose lease has run out.
		_, err := db.ExecContext(ctx, db.Rebind(`INSERT INTO processed_messages (handler, message_key, state, claimed_until_ms)
			VALUES ('H', 'k', 'claimed', ?)`), time.Now().Add(-time.Second).UnixMilli())
		require.NoError(t, err)

		runs := 0
		require.NoError(t, dedup.Once(ctx, "H", "k", func(context.Context) error { runs++; return nil }))
		require.NoError(t, dedup.Once(ctx, "H", "k", func(context.Context) error { runs++; return nil }))
		assert.Equal(t, 1, runs, "the expired claim is taken over once, then the key is done")
	})
}

func TestDeduplicator_ConcurrentSecondCallWaitsAndSkips(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		for _, firstFails := range []bool{false, true} {
			name := "first succeeds"
			if firstFails {
				name = "first fails"
			}
			t.Run(name, func(t *testing.T) {
				db := migratedDB(t, backend)
				dedup := adapters.NewDeduplicator(db.DB)
				ctx := testTimeoutCtx(t)
				errFirst := errors.New("first effect failed")
				var effects atomic.Int32
				firstRunning := make(chan struct{})
				releaseFirst := make(chan struct{})

				firstDone := make(chan error, 1)
				go func() {
					firstDone <- dedup.Once(ctx, "H", "k", func(context.Context) error {
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
					secondDone <- dedup.Once(ctx, "H", "k", func(context.Context) error {
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
