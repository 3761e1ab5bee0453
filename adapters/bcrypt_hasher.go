package adapters

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/app/command"
)

// BcryptHasherConfig configures a BcryptHasher.
type BcryptHasherConfig struct {
	// Cost is bcrypt's work factor.
	Cost int
	// Concurrency is how many hashes run at once: more would only share the
	// cores, finishing every hash later, none sooner. Default: GOMAXPROCS.
	Concurrency int
	// MaxWait is how long a caller waits for a turn before it gets
	// command.ErrOverloaded. Default: 10 s.
	MaxWait time.Duration
}

// Defaults of BcryptHasherConfig.
const (
	DefaultHashMaxWait = 10 * time.Second
)

func (c *BcryptHasherConfig) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultHashMaxWait
	}
}

// Validate returns every problem of the configuration at once.
func (c BcryptHasherConfig) Validate() error {
	var errs []error
	if c.Cost < bcrypt.MinCost || c.Cost > bcrypt.MaxCost {
		errs = append(errs, fmt.Errorf("bcrypt cost: want %d to %d, got %d", bcrypt.MinCost, bcrypt.MaxCost, c.Cost))
	}
	if c.Concurrency < 1 {
		errs = append(errs, fmt.Errorf("hash concurrency: want at least 1, got %d", c.Concurrency))
	}
	if c.MaxWait < 0 {
		errs = append(errs, fmt.Errorf("hash wait: want a positive duration, got %s", c.MaxWait))
	}
	return errors.Join(errs...)
}

// BcryptHasher hashes passwords with bcrypt at a fixed cost, Concurrency at
// a time; a caller waits for a turn at most MaxWait.
type BcryptHasher struct {
	cfg   BcryptHasherConfig
	turns chan struct{}
}

// NewBcryptHasher returns the hasher.
func NewBcryptHasher(cfg BcryptHasherConfig) (*BcryptHasher, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &BcryptHasher{cfg: cfg, turns: make(chan struct{}, cfg.Concurrency)}, nil
}

// Hash returns the bcrypt hash of password.
func (h *BcryptHasher) Hash(ctx context.Context, password string) ([]byte, error) {
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	defer h.done()
	return bcrypt.GenerateFromPassword([]byte(password), h.cfg.Cost)
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
	timer := time.NewTimer(h.cfg.MaxWait)
	defer timer.Stop()
	select {
	case h.turns <- struct{}{}:
		return nil
	case <-timer.C:
		return fmt.Errorf("no turn to hash a password within %s: %w", h.cfg.MaxWait, command.ErrOverloaded)
	case <-ctx.Done():
		return fmt.Errorf("waiting to hash a password: %w", ctx.Err())
	}
}

func (h *BcryptHasher) done() { <-h.turns }
