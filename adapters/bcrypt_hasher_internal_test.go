package adapters

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
func newTestHasher(t *testing.T, cfg BcryptHasherConfig) *BcryptHasher {
	t.Helper()
	cfg.Cost = bcrypt.MinCost
	h, err := NewBcryptHasher(cfg)
	require.NoError(t, err)
	return h
}

func TestBcryptHasherConfig_Validate(t *testing.T) {
	_, err := NewBcryptHasher(BcryptHasherConfig{Cost: bcrypt.MaxCost + 1, Concurrency: -1, MaxWait: -time.Second})
	require.Error(t, err)
	for _, want := range []string{"bcrypt cost", "hash concurrency", "hash wait"} {
		assert.Contains(t, err.Error(), want, "every problem at once")
	}
	h, err := NewBcryptHasher(BcryptHasherConfig{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	assert.Equal(t, runtime.GOMAXPROCS(0), cap(h.turns), "GOMAXPROCS hashes at a time by default")
	assert.Equal(t, DefaultHashMaxWait, h.cfg.MaxWait)
}

func TestBcryptHasher_HashesAndMatches(t *testing.T) {
	h := newTestHasher(t, BcryptHasherConfig{Concurrency: 2, MaxWait: time.Second})
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

func TestBcryptHasher_BusyTurnsAnswerOverloaded(t *testing.T) {
	const maxWait = 50 * time.Millisecond
	h := newTestHasher(t, BcryptHasherConfig{Concurrency: 2, MaxWait: maxWait})
	h.turns <- struct{}{} // two hashes running
	h.turns <- struct{}{}

	_, err := h.Hash(context.Background(), "correct horse")
	require.ErrorIs(t, err, command.ErrOverloaded, "no turn within maxWait")
	assert.NotContains(t, err.Error(), "correct horse")
	_, err = h.Matches(context.Background(), nil, "correct horse")
	require.ErrorIs(t, err, command.ErrOverloaded)
	assert.True(t, Transient(err), "an overloaded hasher is worth a retry: %v", err)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = h.Hash(ctx, "correct horse")
	require.ErrorIs(t, err, context.Canceled, "a caller that gives up stops waiting")

	// A turn given back while a caller waits is taken (a wait long enough
	// that only the release can end it).
	patient := newTestHasher(t, BcryptHasherConfig{Concurrency: 1, MaxWait: time.Minute})
	patient.turns <- struct{}{}
	time.AfterFunc(10*time.Millisecond, patient.done)
	_, err = patient.Hash(context.Background(), "correct horse")
	require.NoError(t, err)
	assert.Empty(t, patient.turns, "the turn is given back after the hash")
}
