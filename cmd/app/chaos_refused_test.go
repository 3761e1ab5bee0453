//go:build chaos

package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// 8. Recipients refused for good: the SMTP server answers "550 5.1.1 no
// such user" at RCPT TO for chaosSize.refused of chaosSize.refuseLoad
// recipients, spread through the load. Each refused recipient is tried
// once (one RCPT TO at the server) and its message poisoned at once, with
// the reason and no address; every other recipient gets exactly one email,
// and every welcome email is attempted exactly once: none waits behind a
// refused one's retries. Every user gets its points.
//
// Not on MariaDB: there the sql transport's ack of a batch may deadlock with
// a publish (1213), and watermill-sql then delivers the whole batch again, a
// refused recipient's message included: a second attempt that no retry
// policy makes.
func TestChaos_RefusedRecipients(t *testing.T) {
	chaosParallel(t)
	backends := map[string]testenv.Backend{}
	for _, b := range testenv.Backends() {
		backends[b.Name] = b
	}
	for _, c := range []struct{ backend, pubsub string }{
		{"sqlite", "sql"}, {"postgres", "sql"}, {"postgres", "amqp"}, {"postgres", "nats"},
		{"postgres", "redis"}, {"postgres", "googlecloud"}, {"postgres", "sqs"},
	} {
		t.Run(c.backend+"/"+c.pubsub, func(t *testing.T) {
			chaosParallel(t)
			refusedScenario(t, backends[c.backend], c.pubsub)
		})
	}
}

func refusedScenario(t *testing.T, backend testenv.Backend, pubsub string) {
	d := e2e.Deploy(t, e2e.Config{PubSub: pubsub, Database: backend.URL, SMTP: true})
	smtpServer := d.SMTP
	arrivals := e2e.WatchArrivals(t, smtpServer)
	proc, api := d.Serve(t)
	e := &chaosEnv{Deployment: d, run: e2e.RunID()} // its users alone: the snapshot reads PostgreSQL's tables

	// The usual latency: a load without refusals.
	baseline := e.users("refusedbase", 0, chaosSize.refuseLoad/2)
	startLoad(baseline, func(int) *e2e.Client { return api }).wait(t)
	requireEmails(t, arrivals, baseline, "the baseline load")

	// The same load with recipients refused for good spread through it.
	users := e.users("refused", 0, chaosSize.refuseLoad)
	var refused, others []*chaosUser
	step := len(users) / chaosSize.refused
	for i, u := range users {
		if i%step == step/2 && len(refused) < chaosSize.refused {
			refused = append(refused, u)
			smtpServer.Refuse(u.Email)
			continue
		}
		others = append(others, u)
	}
	startLoad(users, func(int) *e2e.Client { return api }).wait(t)
	requireEmails(t, arrivals, others, "every recipient not refused")

	// Each refused recipient's message is poisoned, with the reason and no
	// address: the copy of the message its one failed attempt logged.
	var poisoned string
	require.Eventually(t, func() bool {
		poisoned = d.Operator(t, "poison", "list")
		return strings.Count(poisoned, event.SendWelcomeEmailName) == len(refused)
	}, chaosSettleTimeout, e2e.CommandPoll, "each refused recipient's welcome email is poisoned")
	assert.Equal(t, len(refused), strings.Count(poisoned, "SMTP RCPT TO failed: server answered 550 5.1.1"),
		"poisoned with the reason:\n%s", poisoned)
	assert.Equal(t, "no messages waiting for a retry\n", d.Operator(t, "retries", "list"),
		"a refusal for good does not wait in the retry queue")
	require.Eventually(t, func() bool {
		grants, err := keyCounts(d.DB, `SELECT user_id, count(*) FROM points_entries GROUP BY user_id`)
		if err != nil {
			return false
		}
		for _, u := range append(slices.Clone(users), baseline...) {
			if grants[u.ID] != 1 {
				return false
			}
		}
		return true
	}, chaosSettleTimeout, e2e.Poll, "every user, refused or not, gets its points once")

	// One attempt at each welcome email, as the handler's log lines and the
	// server's RCPT TO count it: no email waited behind a refused one's
	// retries.
	attempts := welcomeAttempts(proc)
	for _, u := range refused {
		assert.Zero(t, smtpServer.CountTo(u.Email), "no email to %s", u.Email)
		assert.Equal(t, 1, smtpServer.RcptCount(u.Email), "%s is tried once", u.Email)
		assert.NotContains(t, poisoned, u.Email)
		failed := attempts[u.RequestID]
		if assert.Len(t, failed, 1, "attempts at the welcome email of %s", u.Email) {
			assert.Equal(t, "message failed", failed[0].msg)
			assert.Contains(t, failed[0].err, "550 5.1.1")
			assert.Contains(t, poisoned, failed[0].uuid, "the message of %s is in the poison queue", u.Email)
		}
	}
	for _, u := range append(slices.Clone(others), baseline...) {
		require.Equal(t, http.StatusCreated, u.Status, "%s", u)
		assert.Equal(t, 1, smtpServer.CountTo(u.Email), "one email to %s", u.Email)
		assert.Equal(t, 1, smtpServer.RcptCount(u.Email), "%s is tried once", u.Email)
		if handled := attempts[u.RequestID]; assert.Len(t, handled, 1, "attempts at the welcome email of %s", u.Email) {
			assert.Equal(t, "message handled", handled[0].msg)
		}
	}
	total := 0
	for _, a := range attempts {
		total += len(a)
	}
	assert.Equal(t, len(users)+len(baseline), total, "welcome email attempts in all: one per registration")

	t.Logf("chaos refused %s/%s: %d registrations, %d refused with 550 (each tried %s); %d attempts at welcome emails; "+
		"others' 201 → email %s; without refusals %s",
		backend.Name, pubsub, len(users), len(refused), rcptCounts(smtpServer, refused), total,
		latencies(arrivals, others), latencies(arrivals, baseline))
	proc.Stop(t)
	e2e.AssertNoPanic(t, proc)
}

// welcomeAttempt is the log line of one attempt at a welcome email.
type welcomeAttempt struct{ msg, uuid, err string }

// welcomeAttempts returns the welcome email handler's attempts, by the
// client request id of the registration they are about.
func welcomeAttempts(proc *e2e.Process) map[string][]welcomeAttempt {
	out := map[string][]welcomeAttempt{}
	for _, record := range proc.Stdout.JSONLines() {
		msg, _ := record["msg"].(string)
		if record["handler"] != event.SendWelcomeEmailName || (msg != "message handled" && msg != "message failed") {
			continue
		}
		id, _ := record["client_request_id"].(string)
		uuid, _ := record["message_uuid"].(string)
		err, _ := record["error"].(string)
		out[id] = append(out[id], welcomeAttempt{msg: msg, uuid: uuid, err: err})
	}
	return out
}

// rcptCounts lists how often each user's address was named at RCPT TO.
func rcptCounts(server *testsmtp.Server, users []*chaosUser) string {
	counts := make([]string, len(users))
	for i, u := range users {
		counts[i] = fmt.Sprint(server.RcptCount(u.Email))
	}
	return strings.Join(counts, ", ")
}
