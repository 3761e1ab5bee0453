//go:build chaos

package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// 7. Greylisting: the SMTP server answers 451 to chaosSize.greyRefused of
// chaosSize.greyLoad recipients. Every other email arrives while those are
// still refused, with its latency beside that of a load without refusals;
// the refused ones wait in the retry queue (listed, with no address) and
// arrive once each when the server takes them. After a restart with a short
// EMAIL_RETRY_MAX_AGE, recipients refused for good are poisoned with the
// reason while their points are granted.
func TestChaos_Greylisting(t *testing.T) {
	chaosParallel(t)
	backends := map[string]testenv.Backend{}
	for _, b := range testenv.Backends() {
		backends[b.Name] = b
	}
	for _, c := range []struct{ backend, pubsub string }{
		{"sqlite", "sql"}, {"postgres", "sql"}, {"mysql", "sql"}, {"postgres", "amqp"}, {"postgres", "nats"},
		{"postgres", "redis"}, {"postgres", "googlecloud"}, {"postgres", "sqs"},
	} {
		t.Run(c.backend+"/"+c.pubsub, func(t *testing.T) {
			chaosParallel(t)
			greylistScenario(t, backends[c.backend], c.pubsub)
		})
	}
}

func greylistScenario(t *testing.T, backend testenv.Backend, pubsub string) {
	d := e2e.Deploy(t, e2e.Config{PubSub: pubsub, Database: backend.URL, SMTP: true, Vars: map[string]string{
		"EMAIL_RETRY_FIRST_DELAY": "500ms",
		"EMAIL_RETRY_MAX_AGE":     "1h",
	}})
	smtpServer := d.SMTP
	arrivals := e2e.WatchArrivals(t, smtpServer)
	proc, api := d.Serve(t)
	e := &chaosEnv{Deployment: d, run: e2e.RunID()}

	// The usual latency: a load without refusals.
	baseline := e.users("greybase", 0, chaosSize.greyLoad/2)
	startLoad(baseline, func(int) *e2e.Client { return api }).wait(t)
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
	startLoad(users, func(int) *e2e.Client { return api }).wait(t)
	requireEmails(t, arrivals, others, "every other recipient, while the greylisted ones are refused")
	for _, u := range refused {
		assert.Zero(t, smtpServer.CountTo(u.Email), "%s is still refused", u.Email)
	}
	t.Logf("chaos greylist %s/%s: %d registrations, %d greylisted; others' 201 → email %s; without refusals %s",
		backend.Name, pubsub, len(users), len(refused), latencies(arrivals, others), latencies(arrivals, baseline))

	// They wait in the retry queue, listed without their address (each
	// leaves the list for the moment it is back on its topic).
	var waiting string
	assert.Eventually(t, func() bool {
		waiting = d.Operator(t, "retries", "list")
		return strings.Count(waiting, event.SendWelcomeEmailName) == len(refused)
	}, chaosSettleTimeout, e2e.CommandPoll, "every greylisted recipient waits for a retry")
	assert.Contains(t, waiting, "451 4.7.1")
	for _, u := range refused {
		assert.NotContains(t, waiting, u.Email)
	}
	smtpServer.Ungreylist(emailsOf(refused)...)
	requireEmails(t, arrivals, refused, "the greylisted recipients, once accepted")
	require.Eventually(t, func() bool {
		return d.Operator(t, "retries", "list") == "no messages waiting for a retry\n"
	}, chaosSettleTimeout, e2e.CommandPoll, "nothing left to retry")
	assert.Equal(t, "no poisoned messages\n", d.Operator(t, "poison", "list"))
	for _, u := range append(slices.Clone(users), baseline...) {
		assert.Equal(t, 1, smtpServer.CountTo(u.Email), "one email to %s", u.Email)
	}
	proc.Stop(t)

	// Refused for good: poisoned at the maximum age, with the reason.
	d.Vars["EMAIL_RETRY_MAX_AGE"] = "2s"
	proc, api = d.Serve(t)
	lost := e.users("greylost", 0, 2)
	smtpServer.Greylist(emailsOf(lost)...)
	startLoad(lost, func(int) *e2e.Client { return api }).wait(t)
	var poisoned string
	require.Eventually(t, func() bool {
		poisoned = d.Operator(t, "poison", "list")
		return strings.Count(poisoned, event.SendWelcomeEmailName) == len(lost)
	}, chaosSettleTimeout, e2e.CommandPoll, "poisoned at the maximum age")
	assert.Contains(t, poisoned, "still failing")
	assert.Contains(t, poisoned, "451 4.7.1")
	for _, u := range lost {
		assert.NotContains(t, poisoned, u.Email)
		require.Equal(t, http.StatusCreated, u.Status)
		assert.Eventually(t, func() bool { return api.HasSignupPoints(u.ID) }, e2e.EffectsTimeout, e2e.Poll,
			"%s still gets its points", u.Email)
	}
	assert.Equal(t, "no messages waiting for a retry\n", d.Operator(t, "retries", "list"))
	proc.Stop(t)
}

// latencies summarizes the time from each user's 201 to its email.
func latencies(a *e2e.Arrivals, users []*chaosUser) string {
	var took []time.Duration
	for _, u := range users {
		if at, ok := a.First(u.Email); ok {
			took = append(took, at.Sub(u.At))
		}
	}
	return e2e.Latencies(took)
}

// requireEmails waits until every user got an email.
func requireEmails(t *testing.T, a *e2e.Arrivals, users []*chaosUser, what string) {
	t.Helper()
	for _, u := range users {
		require.Equal(t, http.StatusCreated, u.Status, "%s", u)
	}
	var missing []string
	ok := assert.Eventually(t, func() bool {
		missing = missing[:0]
		for _, u := range users {
			if _, ok := a.First(u.Email); !ok {
				missing = append(missing, u.Email)
			}
		}
		return len(missing) == 0
	}, chaosSettleTimeout, e2e.Poll, "emails to %s", what)
	require.True(t, ok, "%d without an email, such as %v", len(missing), missing[:min(3, len(missing))])
}

func emailsOf(users []*chaosUser) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.Email
	}
	return out
}
