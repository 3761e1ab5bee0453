package main

import (
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/e2e"
)

// TestE2E_StopsGracefullyDuringAnSMTPOutage: a handler retrying a failing
// email does not hold up the stop.
func TestE2E_StopsGracefullyDuringAnSMTPOutage(t *testing.T) {
	t.Parallel()
	for _, pubsub := range []string{transport.KindGoChannel, transport.KindSQL, transport.KindAMQP, transport.KindNATS} {
		t.Run(pubsub, func(t *testing.T) {
			t.Parallel()
			d := postgresDeployment(t, pubsub)
			d.SMTP.SetFailing(true)
			proc, api := d.Serve(t)
			api.MustRegister(t, e2e.User{Name: "Stuck Mail", Email: "stuck@example.com", Password: "pw-stuck-mail"})
			require.Eventually(t, func() bool { return d.SMTP.Rejected() >= 2 }, e2e.EffectsTimeout, e2e.Poll,
				"the welcome email is being retried")
			proc.Stop(t)
		})
	}
}

// TestE2E_SIGTERMDuringRegistrations: SIGTERM while 200 registrations are in
// flight. Every request gets an HTTP answer (a 201, or a 503 once the
// database is going), the service exits 0, and after the next start every
// 201 has exactly one email and one grant.
func TestE2E_SIGTERMDuringRegistrations(t *testing.T) {
	t.Parallel()
	const inFlight = 200
	for _, pubsub := range []string{transport.KindSQL, transport.KindAMQP, transport.KindNATS} {
		t.Run(pubsub, func(t *testing.T) {
			t.Parallel()
			d := postgresDeployment(t, pubsub)
			proc, api := d.Serve(t)

			// Each request on a connection of its own: all are in flight at
			// once, none sent late on a connection another's answer frees.
			burst := api.OneConnectionEach()
			users := newUsers("term", e2e.RunID(), inFlight)
			statuses := make([]int, inFlight)
			var created, answered atomic.Int64
			var createdAtSignal, answeredAtSignal int64
			e2e.Burst(func() {
				var wg sync.WaitGroup
				for i := range users {
					wg.Go(func() {
						r, err := burst.Register(users[i], nil)
						answered.Add(1)
						if !assert.NoError(t, err, "request %d got no answer", i) {
							return
						}
						statuses[i] = r.Status
						if r.Status == http.StatusCreated {
							users[i].ID = r.ID()
							created.Add(1)
						}
					})
				}
				// Stop once some registrations are through and most are in flight.
				require.Eventually(t, func() bool { return created.Load() >= 10 }, e2e.StartTimeout, e2e.Poll)
				proc.Signal(t, syscall.SIGTERM)
				createdAtSignal, answeredAtSignal = created.Load(), answered.Load()
				wg.Wait()
			})
			proc.WaitExit(t)
			assert.Equal(t, 0, proc.ExitCode(), "exit status after SIGTERM")

			counts := map[int]int{}
			for _, status := range statuses {
				counts[status]++
			}
			t.Logf("SIGTERM after %d of %d registrations: answers by status %v", createdAtSignal, inFlight, counts)
			assert.Less(t, answeredAtSignal, int64(inFlight), "requests were in flight at SIGTERM")
			for status := range counts {
				assert.Contains(t, []int{http.StatusCreated, http.StatusServiceUnavailable}, status, "answers by status: %v", counts)
			}

			restarted, api2 := d.Serve(t)
			for _, u := range users {
				if u.ID == "" {
					continue
				}
				require.Eventually(t, func() bool {
					return d.SMTP.CountTo(u.Email) >= 1 && api2.HasSignupPoints(u.ID)
				}, e2eCrashEffectsTimeout, e2e.Poll, "the effects of %s after the restart", u.Email)
			}
			for _, u := range users {
				if u.ID != "" {
					assert.Equal(t, 1, d.SMTP.CountTo(u.Email), "one email to %s", u.Email)
					p, _ := api2.Points(u.ID)
					assert.Len(t, p.Entries, 1, "one grant to %s", u.Email)
				} else {
					assert.Zero(t, d.SMTP.CountTo(u.Email), "no email without a 201: %s", u.Email)
				}
			}
			restarted.Stop(t)
		})
	}
}
