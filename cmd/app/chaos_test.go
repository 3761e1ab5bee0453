//go:build chaos

package main

// The fault suite of the Reliability issue: the built binary under a
// registration load, on PostgreSQL, while it is killed, while RabbitMQ, NATS or
// the database is cut off by a TCP proxy embedded in the test (toxiproxy), as two
// replicas, and while it stops on SIGTERM. Each scenario logs one line of
// figures per transport and fails on any registration lost or effect done
// twice. Behind the chaos build tag: the sizes of chaos_full_test.go with
// `make chaos`, those of chaos_short_test.go with `make chaos-short`.

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/e2e"
)

// chaosSizes are the scenarios' sizes.
type chaosSizes struct {
	killLoad    int           // registrations of the kill scenario
	kills       int           // SIGKILLs during that load
	brokerLoad  int           // registrations of the RabbitMQ or NATS cut
	brokerCut   time.Duration // how long the broker is cut off
	dbLoad      int           // registrations of the database cut
	dbCut       time.Duration // how long the database is cut off
	replicaLoad int           // registrations spread over two replicas
	smtpLoad    int           // registrations of the SMTP outage
	smtpCut     time.Duration // how long the SMTP server is unreachable
	inFlight    int           // registrations in flight at SIGTERM
	greyLoad    int           // registrations of the greylisting scenario
	greyRefused int           // of which the SMTP server greylists so many
	refuseLoad  int           // registrations of the scenario of recipients refused for good
	refused     int           // of which the SMTP server refuses so many with a 550
	// parallel runs the scenarios at once, and beside the other end-to-end
	// tests; at full size each runs alone, so that its figures are its own.
	parallel bool
	// recovery is how soon the service must work again after a dependency
	// returns: the promise at full size, where a scenario has the machine
	// to itself; twice that beside the other tests.
	recovery time.Duration
}

// chaosParallel marks a scenario's test parallel when chaosSize says so.
func chaosParallel(t *testing.T) {
	if chaosSize.parallel {
		t.Parallel()
	}
}

// 1. kill -9 during the load, then start again, chaosSize.kills times: every
// 201 has exactly one email and one grant, and a registration that got no
// answer is stored in full or not at all.
func TestChaos_KillDuringLoad(t *testing.T) {
	chaosParallel(t)
	for _, pubsub := range chaosTransports {
		t.Run(pubsub, func(t *testing.T) {
			chaosParallel(t)
			e := newChaosEnv(t, pubsub, chaosProxies{})
			users := e.users("kill", 0, chaosSize.killLoad)
			proc, api := e.Serve(t)
			procs := []*e2e.Process{proc}
			target := newChaosTarget(t, api)
			load := startLoad(users, func(int) *e2e.Client { return target.get() })

			var restarts []string
			for k := 1; k <= chaosSize.kills; k++ {
				load.waitCreated(t, k*len(users)/(chaosSize.kills+1))
				target.down() // requests in flight die with the process; the next ones wait
				proc.Kill(t)
				killed := time.Now()
				proc, api = e.Serve(t)
				restarts = append(restarts, time.Since(killed).Round(time.Millisecond).String())
				procs = append(procs, proc)
				target.up(api)
			}
			load.wait(t)
			settled := e.settle(t, users)

			c := e.tally(t, users)
			e.report(t, c, "kill",
				fmt.Sprintf("kills %d", chaosSize.kills),
				fmt.Sprintf("restarts serving after %v", restarts),
				fmt.Sprintf("settled %s after the load", settled.Round(time.Millisecond)),
				fmt.Sprintf("poisoned %d", e.poisoned(t)))
			assert.Zero(t, c.other, "every answer is a 201: %v", c.statuses)
			proc.Stop(t)
			e2e.AssertNoPanic(t, procs...)
		})
	}
}

// 2. RabbitMQ, NATS, Redis or the Pub/Sub emulator cut off during the load, then back: registrations
// keep getting 201 (the outbox holds the events), and every effect happens
// after the recovery, none twice. The sql transport has no broker to cut.
func TestChaos_BrokerCut(t *testing.T) {
	chaosParallel(t)
	for _, pubsub := range brokers {
		t.Run(pubsub, func(t *testing.T) {
			chaosParallel(t)
			brokerCutScenario(t, pubsub)
		})
	}
}

func brokerCutScenario(t *testing.T, pubsub string) {
	e := newChaosEnv(t, pubsub, chaosProxies{broker: true})
	users := e.users("broker", 0, chaosSize.brokerLoad)
	proc, api := e.Serve(t)
	load := startLoad(users, func(int) *e2e.Client { return api })

	load.waitCreated(t, len(users)/4)
	cutAt := time.Now()
	e.brokerProxy.Cut()
	assert.Eventually(t, func() bool { ok, _ := api.Ready(); return !ok }, chaosSize.recovery, e2e.Poll,
		"/readyz reports the broker down")
	time.Sleep(time.Until(cutAt.Add(chaosSize.brokerCut))) // the cut itself
	held, err := countRows(e.DB, `SELECT count(*) FROM `+e.DB.Quote(watermillsql.MessagesTable(e.DB.DB, transport.OutboxTopic)))
	require.NoError(t, err)
	restoredAt := time.Now()
	e.brokerProxy.Restore(t)

	readyAgain := "never"
	if assert.Eventually(t, func() bool { ok, _ := api.Ready(); return ok }, chaosSettleTimeout, e2e.Poll,
		"/readyz reports ready once the broker is back") {
		readyAgain = time.Since(restoredAt).Round(time.Millisecond).String()
	}
	load.wait(t)
	e.settle(t, users)
	effectsAfter := time.Since(restoredAt)

	createdDuringCut := 0
	for _, u := range users {
		if u.Status == http.StatusCreated && u.At.After(cutAt) && u.At.Before(restoredAt) {
			createdDuringCut++
		}
	}
	c := e.tally(t, users)
	e.report(t, c, "broker-cut",
		fmt.Sprintf("cut %s", restoredAt.Sub(cutAt).Round(time.Millisecond)),
		fmt.Sprintf("201 during the cut %d", createdDuringCut),
		fmt.Sprintf("outbox held %d at the restore", held),
		fmt.Sprintf("ready again after %s", readyAgain),
		fmt.Sprintf("settled %s after the restore", effectsAfter.Round(time.Millisecond)),
		fmt.Sprintf("poisoned %d", e.poisoned(t)))
	assert.Zero(t, c.other, "every answer is a 201: %v", c.statuses)
	assert.Zero(t, c.noAnswer, "every registration is answered")
	assert.Positive(t, createdDuringCut, "registrations get their 201 while the broker is cut off")
	proc.Stop(t)
	e2e.AssertNoPanic(t, proc)
}

// 3. The database cut off during the load: POST /users answers 503
// unavailable and /readyz 503 not-ready; once the database is back the
// service works again by itself within chaosSize.recovery, and nothing that got
// a 201 is lost.
func TestChaos_DatabaseCut(t *testing.T) {
	chaosParallel(t)
	for _, pubsub := range chaosTransports {
		t.Run(pubsub, func(t *testing.T) {
			chaosParallel(t)
			e := newChaosEnv(t, pubsub, chaosProxies{db: true})
			users := e.users("dbcut", 0, chaosSize.dbLoad)
			proc, api := e.Serve(t)
			load := startLoad(users, func(int) *e2e.Client { return api })

			// Registrations the test sends itself, besides the load.
			var probesMu sync.Mutex
			var probes []*chaosUser
			probe := func() *chaosUser {
				probesMu.Lock()
				u := e.users("dbcut", len(users)+len(probes), 1)[0]
				probes = append(probes, u)
				probesMu.Unlock()
				u.register(api)
				return u
			}

			load.waitCreated(t, len(users)/4)
			cutAt := time.Now()
			e.dbProxy.Cut()
			var readyz string
			assert.Eventually(t, func() bool {
				var ok bool
				ok, readyz = api.Ready()
				return !ok
			}, chaosSize.recovery, e2e.Poll, "/readyz reports the database down")
			assert.Equal(t, "503 not-ready", readyz, "/readyz while the database is cut off")
			u := probe()
			assert.Equal(t, http.StatusServiceUnavailable, u.Status, "POST /users while the database is cut off: %s", u)
			assert.Equal(t, "unavailable", u.Code, "POST /users while the database is cut off: %s", u)
			time.Sleep(time.Until(cutAt.Add(chaosSize.dbCut))) // the cut itself
			restoredAt := time.Now()
			e.dbProxy.Restore(t)

			// Recovered: ready, and a new registration gets its 201.
			recovered := "never"
			var recovery time.Duration
			if assert.Eventually(t, func() bool {
				if ok, _ := api.Ready(); !ok {
					return false
				}
				return probe().Status == http.StatusCreated
			}, chaosSettleTimeout, e2e.Poll, "the service works again once the database is back") {
				recovery = time.Since(restoredAt)
				recovered = recovery.Round(time.Millisecond).String()
				assert.LessOrEqual(t, recovery, chaosSize.recovery, "recovery after the database is back")
			}
			load.wait(t)
			probesMu.Lock()
			all := append(append([]*chaosUser(nil), users...), probes...)
			probesMu.Unlock()
			e.settle(t, all)

			unavailable := 0
			var slowest503 time.Duration
			for _, u := range all {
				if !u.Sent || u.Status == http.StatusCreated {
					continue
				}
				if assert.Equal(t, http.StatusServiceUnavailable, u.Status, u.String()) {
					assert.Equal(t, "unavailable", u.Code, u.String())
					unavailable++
					slowest503 = max(slowest503, u.Took)
				}
			}
			c := e.tally(t, all)
			e.report(t, c, "db-cut",
				fmt.Sprintf("cut %s", restoredAt.Sub(cutAt).Round(time.Millisecond)),
				fmt.Sprintf("503 unavailable %d (slowest %s)", unavailable, slowest503.Round(time.Millisecond)),
				fmt.Sprintf("readyz during the cut %q", readyz),
				fmt.Sprintf("recovered %s after the restore", recovered),
				fmt.Sprintf("poisoned %d", e.poisoned(t)))
			assert.Zero(t, c.noAnswer, "every registration is answered")
			proc.Stop(t)
			e2e.AssertNoPanic(t, proc)
		})
	}
}

// 4. Two replicas on two ports sharing the database (and RabbitMQ), the load
// spread over both: each effect exactly once, and both replicas handle events.
func TestChaos_TwoReplicas(t *testing.T) {
	chaosParallel(t)
	for _, pubsub := range chaosTransports {
		t.Run(pubsub, func(t *testing.T) {
			chaosParallel(t)
			e := newChaosEnv(t, pubsub, chaosProxies{})
			users := e.users("replicas", 0, chaosSize.replicaLoad)
			procA, apiA := e.Serve(t)
			procB, apiB := e.Serve(t)
			require.NotEqual(t, apiA.Base, apiB.Base)
			apis := []*e2e.Client{apiA, apiB}
			load := startLoad(users, func(i int) *e2e.Client { return apis[i%2] })
			load.wait(t)
			settled := e.settle(t, users)

			handled := map[string]map[string]int{"a": procA.Handled(), "b": procB.Handled()}
			var figures []string
			for _, replica := range []string{"a", "b"} {
				figures = append(figures, fmt.Sprintf("replica %s handled %d email, %d points", replica,
					handled[replica][chaosEventHandlers[0]], handled[replica][chaosEventHandlers[1]]))
			}
			c := e.tally(t, users)
			e.report(t, c, "replicas", append(figures,
				fmt.Sprintf("settled %s after the load", settled.Round(time.Millisecond)),
				fmt.Sprintf("poisoned %d", e.poisoned(t)))...)
			assert.Zero(t, c.other, "every answer is a 201: %v", c.statuses)
			assert.Zero(t, c.noAnswer, "every registration is answered")
			for replica, counts := range handled {
				assert.Positive(t, counts[chaosEventHandlers[0]]+counts[chaosEventHandlers[1]],
					"replica %s handles events", replica)
			}
			procA.Stop(t)
			procB.Stop(t)
			e2e.AssertNoPanic(t, procA, procB)
		})
	}
}

// 5. The SMTP server unreachable during the load: the welcome emails are
// retried with backoff, never poisoned, and all arrive once it is back, none
// twice.
func TestChaos_SMTPDown(t *testing.T) {
	chaosParallel(t)
	for _, pubsub := range chaosTransports {
		t.Run(pubsub, func(t *testing.T) {
			chaosParallel(t)
			e := newChaosEnv(t, pubsub, chaosProxies{smtp: true})
			users := e.users("smtp", 0, chaosSize.smtpLoad)
			proc, api := e.Serve(t)
			load := startLoad(users, func(int) *e2e.Client { return api })

			load.waitCreated(t, len(users)/4)
			cutAt := time.Now()
			e.smtpProxy.Cut()
			emailsAtCut := len(e.SMTP.Messages())
			time.Sleep(time.Until(cutAt.Add(chaosSize.smtpCut))) // the cut itself
			emailsDuringCut := len(e.SMTP.Messages()) - emailsAtCut
			state, err := e.snapshot()
			require.NoError(t, err)
			waiting := 0 // registrations stored without their email
			for key := range state.owner {
				if state.emails[key] == 0 {
					waiting++
				}
			}
			restoredAt := time.Now()
			e.smtpProxy.Restore(t)
			load.wait(t)
			e.settle(t, users)
			settled := time.Since(restoredAt)

			c := e.tally(t, users)
			poisoned := e.poisoned(t)
			e.report(t, c, "smtp-down",
				fmt.Sprintf("cut %s", restoredAt.Sub(cutAt).Round(time.Millisecond)),
				fmt.Sprintf("emails during the cut %d", emailsDuringCut),
				fmt.Sprintf("registrations waiting for their email at the restore %d", waiting),
				fmt.Sprintf("settled %s after the restore", settled.Round(time.Millisecond)),
				fmt.Sprintf("poisoned %d", poisoned))
			assert.Zero(t, c.other, "every answer is a 201: %v", c.statuses)
			assert.Zero(t, c.noAnswer, "every registration is answered")
			assert.Positive(t, waiting, "registrations waited for their email during the outage")
			assert.Zero(t, poisoned, "an SMTP outage poisons nothing")
			proc.Stop(t)
			e2e.AssertNoPanic(t, proc)
		})
	}
}

// 7. SIGTERM while chaosSize.inFlight registrations are in flight: every
// request gets its answer, and the effects of every 201 happen after the
// next start.
func TestChaos_SIGTERMInFlight(t *testing.T) {
	chaosParallel(t)
	for _, pubsub := range chaosTransports {
		t.Run(pubsub, func(t *testing.T) {
			chaosParallel(t)
			e := newChaosEnv(t, pubsub, chaosProxies{})
			e.Vars["BCRYPT_COST"] = e2e.ReleaseBcryptCost // requests wait for their hash
			users := e.users("sigterm", 0, chaosSize.inFlight)
			proc, api := e.Serve(t)

			var written, answered atomic.Int64
			var inFlight int
			var signalled time.Time
			e2e.Burst(func() {
				var wg sync.WaitGroup
				for _, u := range users {
					wg.Go(func() {
						u.registerTraced(api, func() { written.Add(1) })
						answered.Add(1)
					})
				}
				allAnswered := make(chan struct{})
				go func() {
					wg.Wait()
					close(allAnswered)
				}()
				require.Eventually(t, func() bool { return int(written.Load()) == len(users) }, chaosLoadTimeout, e2e.Poll,
					"every request written")
				inFlight = len(users) - int(answered.Load())
				signalled = time.Now()
				proc.Signal(t, syscall.SIGTERM)
				select {
				case <-allAnswered:
				case <-time.After(e2e.StopTimeout):
					t.Fatalf("%d of %d requests still unanswered %s after SIGTERM",
						len(users)-int(answered.Load()), len(users), e2e.StopTimeout)
				}
			})
			proc.WaitExit(t)
			stopped := time.Since(signalled)

			next, _ := e.Serve(t)
			restarted := time.Now()
			e.settle(t, users)
			settled := time.Since(restarted)

			c := e.tally(t, users)
			e.report(t, c, "sigterm",
				fmt.Sprintf("in flight at SIGTERM %d", inFlight),
				fmt.Sprintf("exited %s after SIGTERM", stopped.Round(time.Millisecond)),
				fmt.Sprintf("settled %s after the restart", settled.Round(time.Millisecond)),
				fmt.Sprintf("poisoned %d", e.poisoned(t)))
			assert.Zero(t, c.noAnswer, "every request in flight at SIGTERM is answered")
			for status := range c.statuses {
				assert.Equal(t, "503 overloaded", status, "a 201, or a request to come back: %v", c.statuses)
			}
			assert.Positive(t, inFlight, "requests were in flight at SIGTERM")
			next.Stop(t)
			e2e.AssertNoPanic(t, proc, next)
		})
	}
}
