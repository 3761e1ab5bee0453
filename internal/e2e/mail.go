package e2e

import (
	"fmt"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/testsmtp"
)

// AssertWelcomeEmail checks the one email a user got.
func AssertWelcomeEmail(t testing.TB, server *testsmtp.Server, u User) {
	t.Helper()
	messages := server.MessagesTo(u.Email)
	if !assert.Equal(t, 1, len(messages), "emails to %s", u.Email) {
		return
	}
	m := messages[0]
	assert.Equal(t, []string{u.Email}, m.To, "envelope recipient")
	assert.Equal(t, MailFrom, m.From, "envelope sender")
	for header, want := range map[string]string{"From": MailFrom, "To": u.Email} {
		value, err := m.Header(header)
		require.NoError(t, err)
		addr, err := mail.ParseAddress(value)
		if assert.NoError(t, err, "%s: %q", header, value) {
			assert.Equal(t, want, addr.Address, header)
		}
	}
	subject, err := m.Header("Subject")
	require.NoError(t, err)
	assert.Contains(t, subject, "Welcome")
	text, err := m.Text()
	require.NoError(t, err)
	assert.Contains(t, text, "welcome to onboard")
	assert.NotContains(t, text, u.Name, "the email never carries the name")
}

// Arrivals records when the first email to each address reached an SMTP
// sink.
type Arrivals struct {
	mu    sync.Mutex
	first map[string]time.Time // lower-cased address
}

// WatchArrivals polls the sink every 5 ms, the resolution of the times,
// until the test ends.
func WatchArrivals(t testing.TB, server *testsmtp.Server) *Arrivals {
	a := &Arrivals{first: map[string]time.Time{}}
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		seen := 0
		ticker := time.NewTicker(5 * time.Millisecond)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				return
			case <-ticker.C:
			}
			messages := server.Messages()
			now := time.Now()
			a.mu.Lock()
			for _, m := range messages[seen:] {
				for _, to := range m.To {
					if _, ok := a.first[strings.ToLower(to)]; !ok {
						a.first[strings.ToLower(to)] = now
					}
				}
			}
			a.mu.Unlock()
			seen = len(messages)
		}
	}()
	return a
}

// First is when the first email to addr arrived.
func (a *Arrivals) First(addr string) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.first[strings.ToLower(addr)]
	return at, ok
}

// Latencies summarizes durations: p50, p99 and max, "none" when empty.
func Latencies(took []time.Duration) string {
	if len(took) == 0 {
		return "none"
	}
	took = slices.Sorted(slices.Values(took))
	pct := func(p int) time.Duration { return took[(len(took)-1)*p/100].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %s p99 %s max %s", pct(50), pct(99), took[len(took)-1].Round(time.Millisecond))
}
