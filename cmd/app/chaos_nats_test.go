//go:build chaos

package main

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// 10. NATS, a server of the test's own with JetStream on a file store,
// killed (kill -9) and started again while it holds the welcome emails of
// the load (the SMTP server refuses them meanwhile): its streams and
// consumers come back from the store, so every 201 gets its effects once.
func TestChaos_NATSCrashWithFileStore(t *testing.T) {
	chaosParallel(t)
	server := testenv.StartNATS(t)
	e := newChaosEnvOf(t, e2e.Config{PubSub: transport.TransportNATS, NATSURL: server.URL}, chaosProxies{})
	users := e.users("nats-crash", 0, chaosSize.brokerLoad)
	e.SMTP.SetFailing(true) // the welcome emails wait in NATS
	proc, api := e.Serve(t)
	startLoad(users, func(int) *e2e.Client { return api }).wait(t)
	created := 0
	for _, u := range users {
		if u.Status == http.StatusCreated {
			created++
		}
	}
	require.Eventually(t, func() bool {
		s, err := e.snapshot()
		require.NoError(t, err)
		return s.outbox == 0 && len(s.grants) == created
	}, chaosSettleTimeout, e2e.Poll, "every event forwarded to NATS, and its points granted")
	waiting := created - len(e.SMTP.Messages())

	server.Kill(t)
	killedAt := time.Now()
	assert.Eventually(t, func() bool { ok, _ := api.Ready(); return !ok }, chaosSize.recovery, e2e.Poll,
		"/readyz reports NATS down")
	server.Start(t)
	startedAt := time.Now()
	readyAgain := "never"
	if assert.Eventually(t, func() bool { ok, _ := api.Ready(); return ok }, chaosSettleTimeout, e2e.Poll,
		"/readyz reports ready once NATS is back") {
		readyAgain = time.Since(startedAt).Round(time.Millisecond).String()
	}
	e.SMTP.SetFailing(false)
	e.settle(t, users)
	settled := time.Since(startedAt)

	c := e.tally(t, users)
	e.report(t, c, "nats-crash",
		fmt.Sprintf("emails waiting in NATS at the kill %d", waiting),
		fmt.Sprintf("down %s", startedAt.Sub(killedAt).Round(time.Millisecond)),
		fmt.Sprintf("ready again after %s", readyAgain),
		fmt.Sprintf("settled %s after the start", settled.Round(time.Millisecond)),
		fmt.Sprintf("poisoned %d", e.poisoned(t)))
	assert.Zero(t, c.other, "every answer is a 201: %v", c.statuses)
	assert.Zero(t, c.noAnswer, "every registration is answered")
	assert.Positive(t, waiting, "emails waited in NATS at the kill")
	proc.Stop(t)
	e2e.AssertNoPanic(t, proc)
}
