package adapters

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/app/command"
)

// BcryptHasher hashes passwords with bcrypt at a fixed cost, at most
// concurrency at a time: more would only share the cores, finishing every
// hash later, none sooner. A caller waits for a turn at most maxWait, then
// gets command.ErrOverloaded.
type BcryptHasher struct {
	cost    int
	turns   chan struct{}
	maxWait time.Duration
}

// NewBcryptHasher returns the hasher.
func NewBcryptHasher(cost, concurrency int, maxWait time.Duration) *BcryptHasher {
	return &BcryptHasher{cost: cost, turns: make(chan struct{}, max(concurrency, 1)), maxWait: maxWait}
}

// Hash returns the bcrypt hash of password.
func (h *BcryptHasher) Hash(ctx context.Context, password string) ([]byte, error) {
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	defer h.done()
	return bcrypt.GenerateFromPassword([]byte(password), h.cost)
}

// Matches tells whether password is the one hash was made from.
func (h *BcryptHasher) Matches(ctx context.Context, hash []byte, password string) (bool, error) {
	if err := h.wait(ctx); err != nil {
		return false, err
	}
	defer h.done()
	return bcrypt.CompareHashAndPassword(hash, []byte(password)) == nil, nil
}

func (h *BcryptHasher) wait(ctx context.Context) error {
	select {
	case h.turns <- struct{}{}:
		return nil
	default:
	}
	timer := time.NewTimer(h.maxWait)
	defer timer.Stop()
	select {
	case h.turns <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("no turn to hash a password within %s: %w", h.maxWait, command.ErrOverloaded)
	case <-ctx.Done():
		return fmt.Errorf("waiting to hash a password: %w", ctx.Err())
	}
}

func (h *BcryptHasher) done() { <-h.turns }
