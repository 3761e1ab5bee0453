package testfake

import (
	"context"
	"slices"
	"sync"

	"github.com/onboard/onboard/domain"
)

// Ledger is an event.PointsGranter in memory: one entry per (user,
// reason), a second grant of the same reason a no-op. Its first Failures
// grants fail with FailWith. With Together set, each grant waits (or its
// context ends) until that many grants are in flight at once: a test that
// passes with it shows that they ran concurrently.
type Ledger struct {
	Failures int
	FailWith error
	Together int

	mu       sync.Mutex
	entries  map[string][]domain.PointsEntry
	grants   int
	arrived  int
	together chan struct{}
}

// Grant adds the entry unless the user has one of its reason.
func (l *Ledger) Grant(ctx context.Context, userID string, entry domain.PointsEntry) error {
	if err := l.waitForOthers(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.grants++
	if l.grants <= l.Failures {
		return l.FailWith
	}
	for _, e := range l.entries[userID] {
		if e.Reason == entry.Reason {
			return nil
		}
	}
	if l.entries == nil {
		l.entries = map[string][]domain.PointsEntry{}
	}
	l.entries[userID] = append(l.entries[userID], entry)
	return nil
}

func (l *Ledger) waitForOthers(ctx context.Context) error {
	l.mu.Lock()
	if l.Together == 0 {
		l.mu.Unlock()
		return nil
	}
	if l.together == nil {
		l.together = make(chan struct{})
	}
	together := l.together
	l.arrived++
	if l.arrived == l.Together {
		close(together)
	}
	l.mu.Unlock()
	select {
	case <-together:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Of is the user's entries.
func (l *Ledger) Of(userID string) []domain.PointsEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries[userID])
}

// Grants is how many grants were asked for, failed and repeated ones
// included.
func (l *Ledger) Grants() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.grants
}
