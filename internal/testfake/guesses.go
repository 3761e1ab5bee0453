package testfake

import (
	"context"
	"sync"
	"time"

	"github.com/onboard/onboard/domain"
)

// Guesses is a command.PasswordGuesses in memory, counting as the
// service's does: each check counted before it is made on three subjects
// (the account, the client, the pair of both), all or none and atomically,
// so that of checks that race only as many as a limit allows pass. After a
// subject's Free-th failure in a row, it waits FirstDelay, twice as long
// after each next one, at most MaxDelay. A right password takes its own
// check back. Unlike the service's, it never forgets old failures. The
// zero value counts with the service's defaults.
type Guesses struct {
	// Pair, Client and Account are the free failures of each subject:
	// 5, 20 and 100 when zero, as the service's defaults.
	Pair, Client, Account int
	// FirstDelay and MaxDelay bound the waits: a minute and an hour when
	// zero.
	FirstDelay, MaxDelay time.Duration
	// Now is the time of the checks; time.Now when nil.
	Now func() time.Time

	mu       sync.Mutex
	subjects map[guessSubject]*guessCount
}

type guessSubject struct{ kind, account, client string }

type guessCount struct {
	failures     int
	blockedUntil time.Time
}

// The service's default free failures and waits.
const (
	DefaultGuessPair    = 5
	DefaultGuessClient  = 20
	DefaultGuessAccount = 100
)

// Begin counts one check of the account's password from client, or
// refuses it, counting nothing, with the longest wait of the subjects that
// refuse.
func (g *Guesses) Begin(_ context.Context, account, client string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	var refusedUntil time.Time
	for _, s := range g.subjectsOf(account, client) {
		if c := g.count(s.subject); c.blockedUntil.After(now) && c.blockedUntil.After(refusedUntil) {
			refusedUntil = c.blockedUntil
		}
	}
	if !refusedUntil.IsZero() {
		return domain.TooManyRequests("too many wrong passwords, try again later", max(refusedUntil.Sub(now), time.Second))
	}
	for _, s := range g.subjectsOf(account, client) {
		c := g.count(s.subject)
		c.failures++
		if c.failures >= s.free {
			c.blockedUntil = now.Add(g.delayAfter(c.failures, s.free))
		}
	}
	return nil
}

// Succeeded takes back the check of a right password; a wait it caused
// ends if the failures left are within the free ones.
func (g *Guesses) Succeeded(_ context.Context, account, client string) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.subjectsOf(account, client) {
		c := g.count(s.subject)
		if c.failures-1 < s.free {
			c.blockedUntil = time.Time{}
		}
		c.failures = max(c.failures-1, 0)
	}
	return nil
}

// delayAfter is the wait after failure n: FirstDelay at the free-th,
// doubling, at most MaxDelay.
func (g *Guesses) delayAfter(n, free int) time.Duration {
	first, most := orDefault(g.FirstDelay, time.Minute), orDefault(g.MaxDelay, time.Hour)
	delay := first
	for step := free; step < n && delay < most; step++ {
		delay *= 2
	}
	return min(delay, most)
}

type limitedSubject struct {
	subject guessSubject
	free    int
}

func (g *Guesses) subjectsOf(account, client string) []limitedSubject {
	return []limitedSubject{
		{guessSubject{"account", account, ""}, orDefault(g.Account, DefaultGuessAccount)},
		{guessSubject{"pair", account, client}, orDefault(g.Pair, DefaultGuessPair)},
		{guessSubject{"client", "", client}, orDefault(g.Client, DefaultGuessClient)},
	}
}

func (g *Guesses) count(s guessSubject) *guessCount {
	if g.subjects == nil {
		g.subjects = map[guessSubject]*guessCount{}
	}
	c, ok := g.subjects[s]
	if !ok {
		c = &guessCount{}
		g.subjects[s] = c
	}
	return c
}

func (g *Guesses) now() time.Time {
	if g.Now == nil {
		return time.Now()
	}
	return g.Now()
}

func orDefault[T comparable](v, fallback T) T {
	var zero T
	if v == zero {
		return fallback
	}
	return v
}
