//go:build chaos

package main

// The registration load of the fault suite (chaos_test.go): each
// registration and its outcome, and the service the load goes to.

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
)

// chaosUser is one registration of a load and what became of it.
type chaosUser struct {
	e2e.User
	// RequestID is sent as X-Request-ID: the service logs it as the
	// client_request_id of every line about this registration.
	RequestID string
	Sent      bool
	Status    int    // 0: no answer
	Code      string // error code of a non-201 answer
	Err       error  // why there was no answer
	At        time.Time
	Took      time.Duration
}

func (u *chaosUser) String() string {
	switch {
	case !u.Sent:
		return u.Email + ": not sent"
	case u.Status == 0:
		return fmt.Sprintf("%s: no answer (%v)", u.Email, u.Err)
	case u.Status == http.StatusCreated:
		return fmt.Sprintf("%s: 201 id %s", u.Email, u.ID)
	}
	return fmt.Sprintf("%s: %d %s", u.Email, u.Status, u.Code)
}

// record notes the outcome of u's registration.
func (u *chaosUser) record(r e2e.Response, err error, sent time.Time) {
	u.Sent, u.At, u.Took = true, time.Now(), time.Since(sent)
	if err != nil {
		u.Err = err
		return
	}
	u.Status = r.Status
	if r.Status == http.StatusCreated {
		u.ID = r.ID()
	} else {
		u.Code, _ = r.Error()
	}
}

// register sends u's registration and records the outcome.
func (u *chaosUser) register(api *e2e.Client) {
	sent := time.Now()
	r, err := api.Register(u.User, http.Header{"X-Request-Id": {u.RequestID}})
	u.record(r, err, sent)
}

// registerTraced is register with written called once the request is
// entirely written to the connection.
func (u *chaosUser) registerTraced(api *e2e.Client, written func()) {
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { written() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
		http.MethodPost, api.Base+"/users", bytes.NewReader(e2e.RegisterBody(u.User)))
	sent := time.Now()
	if err != nil {
		u.record(e2e.Response{}, err, sent)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", u.RequestID)
	r, err := api.Do(req)
	u.record(r, err, sent)
}

// chaosTarget is where the load goes: a running service, or nothing while
// it is down, during which the load waits.
type chaosTarget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	api    *e2e.Client
	closed bool
}

func newChaosTarget(t *testing.T, api *e2e.Client) *chaosTarget {
	target := &chaosTarget{api: api}
	target.cond = sync.NewCond(&target.mu)
	t.Cleanup(target.close)
	return target
}

// up sends the load to api.
func (c *chaosTarget) up(api *e2e.Client) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.api = api
	c.cond.Broadcast()
}

// down holds new registrations until the next up.
func (c *chaosTarget) down() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.api = nil
}

// get returns the service to send to, waiting while it is down; nil once
// the test has ended.
func (c *chaosTarget) get() *e2e.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.api == nil && !c.closed {
		c.cond.Wait()
	}
	return c.api
}

func (c *chaosTarget) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.api = nil
	c.cond.Broadcast()
}

// chaosLoad registers users with chaosWorkers requests in flight.
type chaosLoad struct {
	users    []*chaosUser
	next     atomic.Int64
	created  atomic.Int64
	answered atomic.Int64
	done     chan struct{}
}

// startLoad registers every user, each through the service pick returns
// (nil: stop), and returns at once.
func startLoad(users []*chaosUser, pick func(i int) *e2e.Client) *chaosLoad {
	l := &chaosLoad{users: users, done: make(chan struct{})}
	var wg sync.WaitGroup
	for range chaosWorkers {
		wg.Go(func() {
			for {
				i := int(l.next.Add(1) - 1)
				if i >= len(users) {
					return
				}
				api := pick(i)
				if api == nil {
					return
				}
				u := users[i]
				u.register(api)
				l.answered.Add(1)
				if u.Status == http.StatusCreated {
					l.created.Add(1)
				}
			}
		})
	}
	go func() {
		wg.Wait()
		close(l.done)
	}()
	return l
}

// finished reports whether every worker is done.
func (l *chaosLoad) finished() bool {
	select {
	case <-l.done:
		return true
	default:
		return false
	}
}

// waitCreated waits until n registrations got their 201, or the load ended.
func (l *chaosLoad) waitCreated(t *testing.T, n int) {
	t.Helper()
	require.Eventually(t, func() bool { return int(l.created.Load()) >= n || l.finished() },
		chaosLoadTimeout, e2e.Poll, "%d registrations answered 201", n)
}

// wait waits for the end of the load.
func (l *chaosLoad) wait(t *testing.T) {
	t.Helper()
	select {
	case <-l.done:
	case <-time.After(chaosLoadTimeout):
		t.Fatalf("the load did not end within %s: %d of %d answered", chaosLoadTimeout, l.answered.Load(), len(l.users))
	}
}
