package adapters

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/app/command"
)

func TestBcryptHasher_HashesAndMatches(t *testing.T) {
	h := NewBcryptHasher(bcrypt.MinCost, 2, time.Second)
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
	h := NewBcryptHasher(bcrypt.MinCost, 2, maxWait)
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
	patient := NewBcryptHasher(bcrypt.MinCost, 1, time.Minute)
	patient.turns <- struct{}{}
	time.AfterFunc(10*time.Millisecond, patient.done)
	_, err = patient.Hash(context.Background(), "correct horse")
	require.NoError(t, err)
	assert.Empty(t, patient.turns, "the turn is given back after the hash")
}
