package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// defaultPointsPollEvery is how often the pollers look for users whose points are
// due a look (-points-every). A user is looked at again after that or a tenth of
// its wait so far, whichever is longer: the points latency is known to 10 ms
// or 10 %, and a backlog of effects does not turn into a flood of polls that
// would take the service's CPU.
const defaultPointsPollEvery = 10 * time.Millisecond

// pointsPollers bounds the concurrent points requests, so that polling does
// not become the load.
const pointsPollers = 4

// maxInFlight caps the open loop's outstanding requests.
const maxInFlight = 1024

// registration is one 201 and the times of its effects.
type registration struct {
	id, email string
	// token is the session the registration opened, which reads the points.
	token    string
	created  time.Time     // when the 201 arrived
	latency  time.Duration // from the send (or its schedule) to the 201
	pointsAt time.Time     // when the points were first seen; zero until then
	polledAt time.Time     // when the points were last asked for
}

type load struct {
	o      options
	client *http.Client
	sink   *sink
	runID  string

	mu       sync.Mutex
	created  []*registration
	failed   map[string]int
	reads    []time.Duration // of GET /users/{id}, with -reads-every
	badReads int
	sent     atomic.Int64
	inFlight atomic.Int64
	start    time.Time
	end      time.Time // the last answer
}

func newLoad(o options, client *http.Client, sink *sink) *load {
	return &load{o: o, client: client, sink: sink, runID: uuid.NewString()[:8], failed: map[string]int{}}
}

// run sends the registrations, closed or open loop, while the points
// pollers watch the effects; it returns once every request was answered.
func (l *load) run(ctx context.Context) {
	if l.o.duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, l.o.duration)
		defer cancel()
	}
	l.start = time.Now()
	stopProgress := l.progress()
	defer stopProgress()
	var sends sync.WaitGroup
	more := func(i int) bool { return ctx.Err() == nil && (l.o.count <= 0 || i < l.o.count) }
	if l.o.rate > 0 {
		interval := time.Duration(float64(time.Second) / l.o.rate)
		for i := 0; more(i); i++ {
			scheduled := l.start.Add(time.Duration(i) * interval)
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(scheduled)):
			}
			if ctx.Err() != nil {
				break
			}
			if l.inFlight.Load() >= maxInFlight {
				l.fail("skipped: in-flight cap")
				continue
			}
			sends.Go(func() { l.send(i, scheduled) })
		}
	} else {
		var next atomic.Int64
		for range l.o.concurrency {
			sends.Go(func() {
				for i := int(next.Add(1) - 1); more(i); i = int(next.Add(1) - 1) {
					l.send(i, time.Now())
				}
			})
		}
	}
	sends.Wait()
}

// send registers user i; latency counts from scheduled, so a late open-loop
// send is not hidden (no coordinated omission).
func (l *load) send(i int, scheduled time.Time) {
	l.sent.Add(1)
	l.inFlight.Add(1)
	defer l.inFlight.Add(-1)
	email := fmt.Sprintf("load-%s-%d@example.com", l.runID, i)
	body, _ := json.Marshal(map[string]string{"name": "Load User", "email": email, "password": "load-test-password-" + strconv.Itoa(i)})
	resp, err := l.client.Post(l.o.url+"/users", "application/json", bytes.NewReader(body))
	answered := time.Now()
	l.mu.Lock()
	l.end = answered
	l.mu.Unlock()
	if err != nil {
		l.fail("error: " + firstWords(err.Error(), 6))
		return
	}
	defer func() { _ = resp.Body.Close() }()
	var user struct {
		ID      string `json:"id"`
		Session struct {
			Token string `json:"token"`
		} `json:"session"`
	}
	if resp.StatusCode != http.StatusCreated || json.NewDecoder(resp.Body).Decode(&user) != nil || user.ID == "" {
		l.fail("status " + strconv.Itoa(resp.StatusCode))
		return
	}
	l.mu.Lock()
	l.created = append(l.created, &registration{id: user.ID, token: user.Session.Token, email: email, created: answered, latency: answered.Sub(scheduled)})
	l.mu.Unlock()
}

func (l *load) fail(reason string) {
	l.mu.Lock()
	l.failed[reason]++
	l.mu.Unlock()
}

func firstWords(s string, n int) string {
	words := strings.Fields(s)
	return strings.Join(words[:min(n, len(words))], " ")
}

// pollDue returns the registrations whose points have not shown yet and are
// due a look at now, marking them polled.
func (l *load) pollDue(now time.Time) []*registration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []*registration
	for _, r := range l.created {
		if r.pointsAt.IsZero() && now.Sub(r.polledAt) >= max(l.o.pointsEvery, now.Sub(r.created)/10) {
			r.polledAt = now
			out = append(out, r)
		}
	}
	return out
}

// pollPoints checks the points of the users due a look, with pointsPollers
// requests at a time.
func (l *load) pollPoints() {
	work := make(chan *registration)
	var wg sync.WaitGroup
	for range pointsPollers {
		wg.Go(func() {
			for r := range work {
				if l.pointsVisible(r.id, r.token) {
					l.mu.Lock()
					r.pointsAt = time.Now()
					l.mu.Unlock()
				}
			}
		})
	}
	for _, r := range l.pollDue(time.Now()) {
		work <- r
	}
	close(work)
	wg.Wait()
}

func (l *load) pointsVisible(id, token string) bool {
	req, err := http.NewRequest(http.MethodGet, l.o.url+"/users/"+id+"/points", nil)
	if err != nil {
		return false
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := l.client.Do(req)
	if err != nil {
		return false
	}
	defer func() { _ = resp.Body.Close() }()
	var points struct {
		Balance int `json:"balance"`
	}
	return resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(&points) == nil && points.Balance > 0
}

// readUser times GET /users/{id} of a user registered so far, picked at
// random, with its own session.
func (l *load) readUser() {
	l.mu.Lock()
	if len(l.created) == 0 {
		l.mu.Unlock()
		return
	}
	r := l.created[rand.IntN(len(l.created))]
	l.mu.Unlock()
	req, err := http.NewRequest(http.MethodGet, l.o.url+"/users/"+r.id, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	start := time.Now()
	resp, err := l.client.Do(req)
	ok := err == nil && resp.StatusCode == http.StatusOK
	if err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
	}
	took := time.Since(start)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		l.badReads++
		return
	}
	l.reads = append(l.reads, took)
}

// effectsDone counts the registrations whose email and points were seen.
func (l *load) effectsDone() (emails, points int) {
	l.mu.Lock()
	created := append([]*registration(nil), l.created...)
	l.mu.Unlock()
	for _, r := range created {
		if _, ok := l.sink.received(r.email); ok {
			emails++
		}
		l.mu.Lock()
		if !r.pointsAt.IsZero() {
			points++
		}
		l.mu.Unlock()
	}
	return emails, points
}

// waitEffects waits, while the pollers look, until every 201 has its email
// and its points, or timeout passes after the load.
func (l *load) waitEffects(ctx context.Context, timeout time.Duration) {
	stopProgress := l.progress()
	defer stopProgress()
	deadline := time.Now().Add(timeout)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		emails, points := l.effectsDone()
		l.mu.Lock()
		n := len(l.created)
		l.mu.Unlock()
		if emails == n && points == n {
			return
		}
		time.Sleep(l.o.pointsEvery) // the polling period
	}
}

// progress prints a status line on stderr every second until stopped; the
// points pollers run meanwhile during the load.
func (l *load) progress() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		ticker := time.NewTicker(time.Second)
		defer ticker.Stop()
		for {
			select {
			case <-done:
				fmt.Fprintln(os.Stderr)
				return
			case <-ticker.C:
				emails, points := l.effectsDone()
				l.mu.Lock()
				created := len(l.created)
				l.mu.Unlock()
				fmt.Fprintf(os.Stderr, "\r  %5.1fs  sent %d  201s %d  emails %d  points %d  in-flight %d   ",
					time.Since(l.start).Seconds(), l.sent.Load(), created, emails, points, l.inFlight.Load())
			}
		}
	})
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			case <-time.After(l.o.pointsEvery):
				l.pollPoints()
			}
		}
	})
	if l.o.readsEvery > 0 {
		wg.Go(func() {
			ticker := time.NewTicker(l.o.readsEvery)
			defer ticker.Stop()
			for {
				select {
				case <-done:
					return
				case <-ticker.C:
					l.readUser()
				}
			}
		})
	}
	return func() { close(done); wg.Wait() }
}

// fill computes the report's figures.
func (l *load) fill(r *Report) {
	l.mu.Lock()
	defer l.mu.Unlock()
	r.Mode = fmt.Sprintf("closed loop, %d workers", l.o.concurrency)
	if l.o.rate > 0 {
		r.Mode = fmt.Sprintf("open loop, %.1f registrations/s", l.o.rate)
	}
	r.Sent, r.Created, r.Failed = int(l.sent.Load()), len(l.created), l.failed
	r.Seconds = l.end.Sub(l.start).Seconds()
	if r.Seconds > 0 {
		r.RegistrationsPerS = float64(r.Created) / r.Seconds
	}
	if r.BcryptHashesPerSec > 0 {
		r.ShareOfBcryptBound = r.RegistrationsPerS / r.BcryptHashesPerSec
	}
	var created, email, points []time.Duration
	for _, reg := range l.created {
		created = append(created, reg.latency)
		if at, ok := l.sink.received(reg.email); ok {
			email = append(email, max(at.Sub(reg.created), 0))
		} else {
			r.MissingEmails++
		}
		if reg.pointsAt.IsZero() {
			r.MissingPoints++
		} else {
			points = append(points, max(reg.pointsAt.Sub(reg.created), 0))
		}
	}
	r.Created201, r.Email, r.Points = latencies(created), latencies(email), latencies(points)
	r.Read, r.FailedReads = latencies(l.reads), l.badReads
	if l.o.samples {
		r.EmailSamplesMs, r.ReadSamplesMs = samplesMs(email), samplesMs(l.reads)
	}
	r.Emails, r.Duplicates = l.sink.stats()
}
