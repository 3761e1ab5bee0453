//go:build chaos

package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// 7. Greylisting: the SMTP server answers 451 to chaosSize.greyRefused of
// chaosSize.greyLoad recipients. Every other email arrives while those are
// still refused, with its latency beside that of a load without refusals;
// the refused ones wait in the retry queue (listed, with no address) and
// arrive once each when the server takes them. After a restart with a short
// EMAIL_RETRY_MAX_AGE, recipients refused for good are poisoned with the
// reason while their points are granted.
func TestChaos_Greylisting(t *testing.T) {
	backends := map[string]testenv.Backend{}
	for _, b := range testenv.Backends() {
		backends[b.Name] = b
	}
	for _, c := range []struct{ backend, pubsub string }{
		{"sqlite", "sql"}, {"postgres", "sql"}, {"mysql", "sql"}, {"postgres", "amqp"},
	} {
		t.Run(c.backend+"/"+c.pubsub, func(t *testing.T) { greylistScenario(t, backends[c.backend], c.pubsub) })
	}
}

func greylistScenario(t *testing.T, backend testenv.Backend, pubsub string) {
	dbURL := backend.URL(t)
	db := testenv.OpenDB(t, dbURL)
	amqpURL := e2eUnreachableAMQP
	if pubsub == "amqp" {
		amqpURL = testenv.URL(t, testenv.AMQPURLVar)
		lockServiceQueues(t, db)
		resetServiceQueues(t, amqpURL)
	}
	smtpServer := testsmtp.Start(t)
	arrivals := watchArrivals(t, smtpServer)
	env := map[string]string{
		"PUBSUB":                  pubsub,
		"DATABASE_URL":            dbURL,
		"AMQP_URL":                amqpURL,
		"SMTP_URL":                smtpServer.URL(),
		"EMAIL_RETRY_FIRST_DELAY": "500ms",
		"EMAIL_RETRY_MAX_AGE":     "1h",
	}
	proc := runBinary(t, env)
	api := newE2EAPI(proc.waitServing(t))
	e := &chaosEnv{pubsub: pubsub, run: strings.ReplaceAll(uuid.NewString(), "-", "")[:8], db: db, smtp: smtpServer}

	// The usual latency: a load without refusals.
	baseline := e.users("greybase", 0, chaosSize.greyLoad/2)
	startLoad(baseline, func(int) *e2eAPI { return api }).wait(t)
	requireEmails(t, arrivals, baseline, "the baseline load")

	// The same load with refusals spread through it.
	users := e.users("grey", 0, chaosSize.greyLoad)
	var refused, others []*chaosUser
	for i, u := range users {
		if i%(len(users)/chaosSize.greyRefused) == 0 && len(refused) < chaosSize.greyRefused {
			refused = append(refused, u)
			smtpServer.Greylist(u.Email)
			continue
		}
		others = append(others, u)
	}
	startLoad(users, func(int) *e2eAPI { return api }).wait(t)
	requireEmails(t, arrivals, others, "every other recipient, while the greylisted ones are refused")
	for _, u := range refused {
		assert.Zero(t, smtpServer.CountTo(u.Email), "%s is still refused", u.Email)
	}
	t.Logf("chaos greylist %s/%s: %d registrations, %d greylisted; others' 201 → email %s; without refusals %s",
		backend.Name, pubsub, len(users), len(refused), arrivals.latencies(others), arrivals.latencies(baseline))

	// They wait in the retry queue, listed without their address (each
	// leaves the list for the moment it is back on its topic).
	var waiting string
	assert.Eventually(t, func() bool {
		waiting = operatorCommand(t, env, "retries", "list")
		return strings.Count(waiting, event.SendWelcomeEmailName) == len(refused)
	}, chaosSettleTimeout, e2ePoll, "every greylisted recipient waits for a retry")
	assert.Contains(t, waiting, "451 4.7.1")
	for _, u := range refused {
		assert.NotContains(t, waiting, u.Email)
	}
	smtpServer.Ungreylist(emailsOf(refused)...)
	requireEmails(t, arrivals, refused, "the greylisted recipients, once accepted")
	require.Eventually(t, func() bool {
		return operatorCommand(t, env, "retries", "list") == "no messages waiting for a retry\n"
	}, chaosSettleTimeout, e2ePoll, "nothing left to retry")
	assert.Equal(t, "no poisoned messages\n", operatorCommand(t, env, "poison", "list"))
	for _, u := range append(slices.Clone(users), baseline...) {
		assert.Equal(t, 1, smtpServer.CountTo(u.Email), "one email to %s", u.Email)
	}
	proc.stop(t)

	// Refused for good: poisoned at the maximum age, with the reason.
	env["EMAIL_RETRY_MAX_AGE"] = "2s"
	proc = runBinary(t, env)
	api = newE2EAPI(proc.waitServing(t))
	lost := e.users("greylost", 0, 2)
	smtpServer.Greylist(emailsOf(lost)...)
	startLoad(lost, func(int) *e2eAPI { return api }).wait(t)
	var poisoned string
	require.Eventually(t, func() bool {
		poisoned = operatorCommand(t, env, "poison", "list")
		return strings.Count(poisoned, event.SendWelcomeEmailName) == len(lost)
	}, chaosSettleTimeout, e2ePoll, "poisoned at the maximum age")
	assert.Contains(t, poisoned, "still failing")
	assert.Contains(t, poisoned, "451 4.7.1")
	for _, u := range lost {
		assert.NotContains(t, poisoned, u.Email)
		require.Equal(t, http.StatusCreated, u.Status)
		points, ok := api.pointsOf(u.ID)
		assert.True(t, ok && points.Balance == e2eSignupPoints, "%s still gets its points", u.Email)
	}
	assert.Equal(t, "no messages waiting for a retry\n", operatorCommand(t, env, "retries", "list"))
	proc.stop(t)
}

// arrivals records when the first email to each address arrived.
type arrivals struct {
	mu    sync.Mutex
	first map[string]time.Time // lower-cased address
}

// watchArrivals polls the server every 5 ms until the test ends.
func watchArrivals(t *testing.T, server *testsmtp.Server) *arrivals {
	a := &arrivals{first: map[string]time.Time{}}
	done := make(chan struct{})
	stopped := make(chan struct{})
	t.Cleanup(func() { close(done); <-stopped })
	go func() {
		defer close(stopped)
		seen := 0
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond): // the resolution of the latencies
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

func (a *arrivals) arrived(u *chaosUser) (time.Time, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	at, ok := a.first[strings.ToLower(u.Email)]
	return at, ok
}

// latencies summarizes the time from each user's 201 to its email.
func (a *arrivals) latencies(users []*chaosUser) string {
	var took []time.Duration
	for _, u := range users {
		if at, ok := a.arrived(u); ok {
			took = append(took, at.Sub(u.At))
		}
	}
	if len(took) == 0 {
		return "none"
	}
	slices.Sort(took)
	pct := func(p int) time.Duration { return took[(len(took)-1)*p/100].Round(time.Millisecond) }
	return fmt.Sprintf("p50 %s p99 %s max %s", pct(50), pct(99), took[len(took)-1].Round(time.Millisecond))
}

// requireEmails waits until every user got an email.
func requireEmails(t *testing.T, a *arrivals, users []*chaosUser, what string) {
	t.Helper()
	for _, u := range users {
		require.Equal(t, http.StatusCreated, u.Status, "%s", u)
	}
	var missing []string
	ok := assert.Eventually(t, func() bool {
		missing = missing[:0]
		for _, u := range users {
			if _, ok := a.arrived(u); !ok {
				missing = append(missing, u.Email)
			}
		}
		return len(missing) == 0
	}, chaosSettleTimeout, e2ePoll, "emails to %s", what)
	require.True(t, ok, "%d without an email, such as %v", len(missing), missing[:min(3, len(missing))])
}

func emailsOf(users []*chaosUser) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Email
	}
	return out
}
