package hasher

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/app/command"
)

// newTestHasher returns a hasher at bcrypt's lowest cost.
func newTestHasher(t *testing.T, cfg Config) *Bcrypt {
	t.Helper()
	cfg.Cost = bcrypt.MinCost
	h, err := New(cfg)
	require.NoError(t, err)
	return h
}

func TestConfig_Validate(t *testing.T) {
	_, err := New(Config{Cost: bcrypt.MaxCost + 1, Concurrency: -1, MaxWait: -time.Second, QueueMax: -1})
	require.Error(t, err)
	for _, want := range []string{"bcrypt cost", "hash concurrency", "hash wait", "hash queue"} {
		assert.Contains(t, err.Error(), want, "every problem at once")
	}
	h, err := New(Config{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	assert.Equal(t, runtime.GOMAXPROCS(0), cap(h.turns), "GOMAXPROCS hashes at a time by default")
	assert.Equal(t, DefaultMaxWait, h.cfg.MaxWait)
	assert.Equal(t, DefaultQueueMax, h.cfg.QueueMax)
}

func TestBcrypt_HashesAndMatches(t *testing.T) {
	h := newTestHasher(t, Config{Concurrency: 2, MaxWait: time.Second})
	ctx := context.Background()

	hash, err := h.Hash(ctx, "correct horse")
	require.NoError(t, err)
	assert.NotContains(t, string(hash), "correct horse")
	same, err := h.Matches(ctx, hash, "correct horse")
	require.NoError(t, err)
	assert.True(t, same)
	same, err = h.Matches(ctx, hash, "battery staple")
	require.NoError(t, err)
	assert.False(t, same)
	assert.Empty(t, h.turns, "every turn is given back")
}

func TestBcrypt_BusyTurnsAnswerOverloaded(t *testing.T) {
	const maxWait = 50 * time.Millisecond
	h := newTestHasher(t, Config{Concurrency: 2, MaxWait: maxWait})
	h.turns <- struct{}{} // two hashes running
	h.turns <- struct{}{}

	_, err := h.Hash(context.Background(), "correct horse")
	require.ErrorIs(t, err, command.ErrOverloaded, "no turn within maxWait")
	assert.NotContains(t, err.Error(), "correct horse")
	_, err = h.Matches(context.Background(), nil, "correct horse")
	require.ErrorIs(t, err, command.ErrOverloaded)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = h.Hash(ctx, "correct horse")
	require.ErrorIs(t, err, context.Canceled, "a caller that gives up stops waiting")

	// A turn given back while a caller waits is taken (a wait long enough
	// that only the release can end it).
	patient := newTestHasher(t, Config{Concurrency: 1, MaxWait: time.Minute})
	patient.turns <- struct{}{}
	time.AfterFunc(10*time.Millisecond, patient.done)
	_, err = patient.Hash(context.Background(), "correct horse")
	require.NoError(t, err)
	assert.Empty(t, patient.turns, "the turn is given back after the hash")
}

// With every turn taken and QueueMax callers already waiting, one more is
// answered overloaded at once, not after MaxWait; a caller that gave up
// leaves the queue.
func TestBcrypt_FullQueueAnswersOverloadedAtOnce(t *testing.T) {
	h := newTestHasher(t, Config{Concurrency: 1, MaxWait: time.Hour, QueueMax: 2})
	h.turns <- struct{}{} // a hash running

	ctx, cancel := context.WithCancel(context.Background())
	waiters := make(chan error, 2)
	for range 2 {
		go func() {
			_, err := h.Hash(ctx, "correct horse")
			waiters <- err
		}()
	}
	require.Eventually(t, func() bool { return h.waiting.Load() == 2 }, 10*time.Second, time.Millisecond)

	// Bounded by a deadline, so that a hasher that queues it fails the test
	// with the deadline's error instead of hanging for MaxWait.
	late, stop := context.WithTimeout(context.Background(), 30*time.Second)
	defer stop()
	_, err := h.Hash(late, "correct horse")
	require.ErrorIs(t, err, command.ErrOverloaded, "the queue is full")
	assert.ErrorIs(t, err, ErrQueueFull)
	_, err = h.Matches(late, nil, "correct horse")
	require.ErrorIs(t, err, ErrQueueFull, "checking a password waits in the same queue")

	cancel()
	for range 2 {
		assert.ErrorIs(t, <-waiters, context.Canceled)
	}
	assert.Zero(t, h.waiting.Load(), "callers that gave up left the queue")
	h.done()
	_, err = h.Hash(late, "correct horse")
	require.NoError(t, err, "a turn is free again")
}
