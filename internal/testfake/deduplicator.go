package testfake

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/onboard/onboard/app/event"
)

// Deduplicator honours the event.Deduplicator contract in memory: one lock
// per (handler, key), held while the effect runs, so that a concurrent
// second run waits for the first; the record is kept only when the effect
// succeeded. The tests' events are in the clear: opening one leaves it as
// it is.
type Deduplicator struct {
	mu    sync.Mutex
	locks map[Done]*sync.Mutex
	done  map[Done]bool
	calls atomic.Int32
}

// Done names what a handler did once: its name and its key.
type Done struct{ Handler, Key string }

// NewDeduplicator returns a deduplicator that has recorded nothing.
func NewDeduplicator() *Deduplicator {
	return &Deduplicator{locks: map[Done]*sync.Mutex{}, done: map[Done]bool{}}
}

// Once runs effect unless the claim's handler already did its key.
func (d *Deduplicator) Once(ctx context.Context, claim event.Claim, effect func(ctx context.Context) error) error {
	d.calls.Add(1)
	id := Done{claim.Handler, claim.Key}
	d.mu.Lock()
	lock, ok := d.locks[id]
	if !ok {
		lock = &sync.Mutex{}
		d.locks[id] = lock
	}
	d.mu.Unlock()

	lock.Lock()
	defer lock.Unlock()
	d.mu.Lock()
	done := d.done[id]
	d.mu.Unlock()
	if done {
		return nil
	}
	if err := effect(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	d.done[id] = true
	d.mu.Unlock()
	return nil
}

// Calls is how many times Once was called, effects skipped included.
func (d *Deduplicator) Calls() int { return int(d.calls.Load()) }

// Records are what was done once, so far, by handler and key.
func (d *Deduplicator) Records() []Done {
	d.mu.Lock()
	defer d.mu.Unlock()
	var records []Done
	for id, done := range d.done {
		if done {
			records = append(records, id)
		}
	}
	slices.SortFunc(records, func(a, b Done) int {
		return cmp.Or(cmp.Compare(a.Handler, b.Handler), cmp.Compare(a.Key, b.Key))
	})
	return records
}
