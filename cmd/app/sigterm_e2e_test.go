package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestE2E_SIGTERMDuringRegistrations: SIGTERM while 200 registrations are in
// flight. Every request gets an HTTP answer (a 201, or a 503 once the
// database is going), the service exits 0, and after the next start every
// 201 has exactly one email and one grant.
func TestE2E_SIGTERMDuringRegistrations(t *testing.T) {
	const inFlight = 200
	for _, pubsub := range []string{transport.TransportSQL, transport.TransportAMQP} {
		t.Run(pubsub, func(t *testing.T) {
			env, _, smtpServer := postgresE2E(t, pubsub)
			proc := runBinary(t, env)
			api := newE2EAPI(proc.waitServing(t))

			run := strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
			users := make([]e2eUser, inFlight)
			statuses := make([]int, inFlight)
			var created atomic.Int64
			var wg sync.WaitGroup
			for i := range users {
				users[i] = e2eUser{Name: "Term User", Email: fmt.Sprintf("term%03d.%s@example.com", i, run), Password: "pw-term-" + run}
				wg.Go(func() {
					r, err := api.register(users[i], nil)
					if !assert.NoError(t, err, "request %d got no answer", i) {
						return
					}
					statuses[i] = r.Status
					if r.Status == http.StatusCreated {
						users[i].ID, _ = r.JSON()["id"].(string)
						created.Add(1)
					}
				})
			}
			// Stop once some registrations are through and most are in flight.
			require.Eventually(t, func() bool { return created.Load() >= 10 }, e2eStartTimeout, e2ePoll)
			require.NoError(t, proc.cmd.Process.Signal(syscall.SIGTERM))
			createdAtSignal := created.Load()
			wg.Wait()
			select {
			case <-proc.exited:
			case <-time.After(e2eStopTimeout):
				t.Fatalf("the service did not exit within %s of SIGTERM", e2eStopTimeout)
			}
			assert.Equal(t, 0, proc.cmd.ProcessState.ExitCode(), "exit status after SIGTERM")

			counts := map[int]int{}
			for _, status := range statuses {
				counts[status]++
			}
			t.Logf("SIGTERM after %d of %d registrations: answers by status %v", createdAtSignal, inFlight, counts)
			for status := range counts {
				assert.Contains(t, []int{http.StatusCreated, http.StatusServiceUnavailable}, status, "answers by status: %v", counts)
			}

			restarted := runBinary(t, env)
			api2 := newE2EAPI(restarted.waitServing(t))
			for _, u := range users {
				if u.ID == "" {
					continue
				}
				require.Eventually(t, func() bool {
					p, ok := api2.pointsOf(u.ID)
					return smtpServer.CountTo(u.Email) >= 1 && ok && p.Balance == e2eSignupPoints
				}, e2eCrashEffectsTimeout, e2ePoll, "the effects of %s after the restart", u.Email)
			}
			for _, u := range users {
				if u.ID != "" {
					assert.Equal(t, 1, smtpServer.CountTo(u.Email), "one email to %s", u.Email)
					p, _ := api2.pointsOf(u.ID)
					assert.Len(t, p.Entries, 1, "one grant to %s", u.Email)
				} else {
					assert.Zero(t, smtpServer.CountTo(u.Email), "no email without a 201: %s", u.Email)
				}
			}
			restarted.stop(t)
		})
	}
}
