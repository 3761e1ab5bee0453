package testfake

import (
	"sync"
	"time"
)

// Clock is a settable time for the code under test: its Now is what a
// constructor takes as its clock, and a test moves it with Advance.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock is a clock at the current time, to the microsecond every
// database keeps.
func NewClock() *Clock { return &Clock{now: time.Now().Truncate(time.Microsecond)} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d (back, for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
