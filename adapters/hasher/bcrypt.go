package hasher

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/app/command"
)

// Config configures a Bcrypt.
type Config struct {
	// Cost is bcrypt's work factor.
	Cost int
	// Concurrency is how many hashes run at once: more would only share the
	// cores, finishing every hash later, none sooner. Default: GOMAXPROCS.
	Concurrency int
	// MaxWait is how long a caller waits for a turn before it gets
	// command.ErrOverloaded. Default: 10 s.
	MaxWait time.Duration
	// QueueMax is how many callers may wait for a turn at once; one more
	// gets ErrQueueFull (a command.ErrOverloaded) at once, not after
	// MaxWait. Default: 64.
	QueueMax int
	// OnWait is told of each wait for a turn, a rejection's included;
	// nil: none.
	OnWait func(time.Duration)
}

// Defaults of Config.
const (
	DefaultMaxWait  = 10 * time.Second
	DefaultQueueMax = 64
)

func (c *Config) setDefaults() {
	if c.Concurrency == 0 {
		c.Concurrency = runtime.GOMAXPROCS(0)
	}
	if c.MaxWait == 0 {
		c.MaxWait = DefaultMaxWait
	}
	if c.QueueMax == 0 {
		c.QueueMax = DefaultQueueMax
	}
}

// Validate returns every problem of the configuration at once.
func (c Config) Validate() error {
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
	if c.QueueMax < 1 {
		errs = append(errs, fmt.Errorf("hash queue: want at least 1, got %d", c.QueueMax))
	}
	return errors.Join(errs...)
}

// Bcrypt hashes passwords with bcrypt at a fixed cost, Concurrency at
// a time; at most QueueMax callers wait for a turn, each at most MaxWait.
type Bcrypt struct {
	cfg     Config
	turns   chan struct{}
	waiting atomic.Int64
	cpu     atomic.Int64 // nanoseconds of CPU the hashes and comparisons took
}

// ErrQueueFull is returned at once when QueueMax callers already wait.
var ErrQueueFull = fmt.Errorf("too many passwords wait to be hashed: %w", command.ErrOverloaded)

// New returns the hasher.
func New(cfg Config) (*Bcrypt, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Bcrypt{cfg: cfg, turns: make(chan struct{}, cfg.Concurrency)}, nil
}

// Hash returns the bcrypt hash of password.
func (h *Bcrypt) Hash(ctx context.Context, password string) ([]byte, error) {
	if err := h.wait(ctx); err != nil {
		return nil, err
	}
	defer h.done()
	var hash []byte
	err := h.timed(func() (err error) {
		hash, err = bcrypt.GenerateFromPassword([]byte(password), h.cfg.Cost)
		return err
	})
	return hash, err
}

// Matches tells whether password is the one hash was made from.
func (h *Bcrypt) Matches(ctx context.Context, hash []byte, password string) (bool, error) {
	if err := h.wait(ctx); err != nil {
		return false, err
	}
	defer h.done()
	return h.timed(func() error { return bcrypt.CompareHashAndPassword(hash, []byte(password)) }) == nil, nil
}

// CPU is the CPU time the hashes and comparisons took so far, read from
// the clocks of the threads that ran them: what a load test subtracts to
// see what the rest of a registration costs.
func (h *Bcrypt) CPU() time.Duration { return time.Duration(h.cpu.Load()) }

// timed runs work on a thread of its own, at the lowest CPU priority the
// system has (lowerThreadPriority), and adds the thread's CPU time to
// h.cpu; a clock that cannot be read counts nothing. The goroutine ends
// with its thread locked, so that the runtime ends the thread too and no
// other goroutine runs at that priority.
func (h *Bcrypt) timed(work func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: see above
		lowerThreadPriority()
		start, startErr := threadCPU()
		err := work()
		if end, endErr := threadCPU(); startErr == nil && endErr == nil {
			h.cpu.Add(int64(end - start))
		}
		done <- err
	}()
	return <-done
}

func (h *Bcrypt) wait(ctx context.Context) error {
	if h.cfg.OnWait != nil {
		defer func(start time.Time) { h.cfg.OnWait(time.Since(start)) }(time.Now())
	}
	select {
	case h.turns <- struct{}{}:
		return nil
	default:
	}
	if h.waiting.Add(1) > int64(h.cfg.QueueMax) {
		h.waiting.Add(-1)
		return ErrQueueFull
	}
	defer h.waiting.Add(-1)
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

func (h *Bcrypt) done() { <-h.turns }
