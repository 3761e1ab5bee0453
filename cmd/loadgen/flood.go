package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
)

// The flood mode: one client floods POST /users (or, with -flood-route
// email-change, PUT /users/{id}/email of its own account to an address
// another user holds: a 409 that hashes each time) over many connections
// while a second registers a few users and a third reads a user, first
// alone (idle), then during the flood. Three addresses of 127.0.0.0/8 play
// the three clients, so only the flooder meets its registration limit.
var (
	flooderAddr   = netip.MustParseAddr("127.0.0.2")
	registrarAddr = netip.MustParseAddr("127.0.0.3")
	readerAddr    = netip.MustParseAddr("127.0.0.4")
	loopback      = netip.MustParsePrefix("127.0.0.0/8")
)

// Targets of the flood mode.
const (
	tooManyP99Target   = 10 * time.Millisecond
	readP99RatioTarget = 3.0
	// registrarP99RatioTarget: another client's registrations keep their
	// latency whatever one client floods.
	registrarP99RatioTarget = 2.0
)

type floodOptions struct {
	url       string
	conns     int           // the flooder's connections
	rate      float64       // the flooder's requests/s, spread over its connections
	duration  time.Duration // of the flood
	maxSent   int           // bounds the flood's requests whatever the duration
	idle      time.Duration // reads alone before the flood
	readRate  float64       // the reader's GETs/s, idle and during the flood
	registers int           // the registrar's registrations during the flood
	clients   string        // "source": bind 127.0.0.x; "xff": send X-Forwarded-For
	route     string        // "register" or "email-change": what the flooder sends
	pid       int
	jsonOut   string
}

func (o floodOptions) validate() error {
	var errs []error
	u, err := url.Parse(o.url)
	if err != nil {
		return fmt.Errorf("-url: %w", err)
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err != nil || !loopback.Contains(ip) {
		errs = append(errs, fmt.Errorf("-flood targets a loopback address of 127.0.0.0/8 only, got %q", u.Hostname()))
	}
	if o.conns < 1 || o.conns > 2000 {
		errs = append(errs, fmt.Errorf("-flood-conns: want 1 to 2000, got %d", o.conns))
	}
	if o.rate <= 0 || o.readRate <= 0 {
		errs = append(errs, errors.New("-flood-rate and -read-rate must be positive"))
	}
	if o.duration <= 0 || o.duration > 10*time.Minute || o.idle <= 0 || o.idle > 10*time.Minute {
		errs = append(errs, errors.New("-flood-for and -idle-for: want up to 10 minutes"))
	}
	if o.maxSent < 1 || o.registers < 1 {
		errs = append(errs, errors.New("-flood-max and -register must be at least 1"))
	}
	if o.route != "register" && o.route != "email-change" {
		errs = append(errs, fmt.Errorf(`-flood-route: want "register" or "email-change", got %q`, o.route))
	}
	if o.clients != "source" && o.clients != "xff" {
		errs = append(errs, fmt.Errorf(`-clients: want "source" or "xff", got %q`, o.clients))
	}
	return errors.Join(errs...)
}

// simClient is one simulated client: its requests come from its own
// address of 127.0.0.0/8 (bound as the source, or named in X-Forwarded-For
// to a service that trusts 127.0.0.1 as its proxy).
type simClient struct {
	addr netip.Addr
	xff  bool
	http *http.Client
	// session, when set, is sent as the bearer token.
	session string
}

func newSimClient(addr netip.Addr, mode string, conns int) *simClient {
	dialer := &net.Dialer{Timeout: 5 * time.Second}
	if mode == "source" {
		dialer.LocalAddr = &net.TCPAddr{IP: addr.AsSlice()}
	}
	return &simClient{addr: addr, xff: mode == "xff", http: &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			MaxIdleConnsPerHost: conns,
			MaxConnsPerHost:     conns,
		},
	}}
}

// do sends a request and reads its answer to the end, so that the
// connection is reused; it returns the status.
func (c *simClient) do(method, url string, body []byte) (int, []byte, error) {
	return c.doWith(method, url, body, nil)
}

// doWith is do with more headers.
func (c *simClient) doWith(method, url string, body []byte, header map[string]string) (int, []byte, error) {
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	for name, value := range header {
		req.Header.Set(name, value)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.xff {
		req.Header.Set("X-Forwarded-For", c.addr.String())
	}
	if c.session != "" {
		req.Header.Set("Authorization", "Bearer "+c.session)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	read, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, read, err
}

func (c *simClient) close() { c.http.CloseIdleConnections() }

// registerOwn registers a user of the client's own with body and keeps the
// session its 201 opened, which the client sends from then on; it returns
// the user's id.
func (c *simClient) registerOwn(baseURL string, body []byte) (string, error) {
	status, answer, err := c.do(http.MethodPost, baseURL+"/users", body)
	if err != nil {
		return "", err
	}
	var user struct {
		ID      string `json:"id"`
		Session struct {
			Token string `json:"token"`
		} `json:"session"`
	}
	if status != http.StatusCreated || json.Unmarshal(answer, &user) != nil || user.ID == "" {
		return "", fmt.Errorf("status %d: %s", status, answer)
	}
	c.session = user.Session.Token
	return user.ID, nil
}

// tally collects the latencies of one kind of request by status.
type tally struct {
	mu        sync.Mutex
	sent      int
	latencies map[int][]time.Duration // by status
	errors    map[string]int
}

func newTally() *tally {
	return &tally{latencies: map[int][]time.Duration{}, errors: map[string]int{}}
}

func (t *tally) record(status int, latency time.Duration, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent++
	if err != nil {
		t.errors[firstWords(err.Error(), 6)]++
		return
	}
	t.latencies[status] = append(t.latencies[status], latency)
}

// byStatus counts the answers by status, and the errors.
func (t *tally) byStatus() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := map[string]int{}
	for status, l := range t.latencies {
		out[strconv.Itoa(status)] = len(l)
	}
	for reason, n := range t.errors {
		out["error: "+reason] = n
	}
	return out
}

func (t *tally) of(status int) Latencies {
	t.mu.Lock()
	defer t.mu.Unlock()
	return latencies(t.latencies[status])
}

// FloodReport holds the figures of one flood run.
type FloodReport struct {
	Clients                 string
	FloodConns              int
	FloodRatePerS           float64 // scheduled
	FloodSent               int
	FloodSeconds            float64
	FloodByStatus           map[string]int
	TooManyRequests         Latencies // the flooder's 429s, from each send
	Route                   string
	RegistrationsSent       int
	RegistrarByStatus       map[string]int
	RegistrarIdle           Latencies // 201s before the flood
	RegistrarCreated        Latencies // 201s during the flood
	RegistrarP99Ratio       float64
	ReadsIdle, ReadsFlooded Latencies // 200s of GET /users/{id}
	ReadsFloodedByStatus    map[string]int
	ReadP99Ratio            float64
	PeakRSSMiB              float64
}

// runFlood measures, in one run, the reads alone, then the flood with the
// registrar and the reader beside it.
func runFlood(ctx context.Context, o floodOptions) (FloodReport, error) {
	if err := o.validate(); err != nil {
		return FloodReport{}, err
	}
	flooder := newSimClient(flooderAddr, o.clients, o.conns)
	registrar := newSimClient(registrarAddr, o.clients, 4)
	reader := newSimClient(readerAddr, o.clients, 64)
	defer flooder.close()
	defer registrar.close()
	defer reader.close()
	run := uuid.NewString()[:8]
	report := FloodReport{Clients: o.clients, FloodConns: o.conns, FloodRatePerS: o.rate, Route: o.route}

	// The reader's user, registered by the reader itself.
	userID, err := reader.registerOwn(o.url, floodBody(run, "reader", 0))
	if err != nil {
		return report, fmt.Errorf("register the reader's user from %s (a loopback address this machine may lack): %w", readerAddr, err)
	}
	readURL := o.url + "/users/" + userID

	floodRequest, err := floodRoute(o, run, flooder)
	if err != nil {
		return report, err
	}

	idleReads, idleRegistrations := newTally(), newTally()
	progress("reads and registrations alone", o.idle)
	var idle sync.WaitGroup
	var registered atomic.Int64
	register := func(into *tally) func(time.Time) {
		return func(scheduled time.Time) {
			status, _, err := registrar.do(http.MethodPost, o.url+"/users", floodBody(run, "registrar", int(registered.Add(1))))
			into.record(status, time.Since(scheduled), err)
		}
	}
	idle.Go(func() {
		openLoop(ctx, o.idle, float64(o.registers+1)/o.idle.Seconds(), o.registers, register(idleRegistrations))
	})
	openLoop(ctx, o.idle, o.readRate, 1<<30, func(scheduled time.Time) {
		status, _, err := reader.do(http.MethodGet, readURL, nil)
		idleReads.record(status, time.Since(scheduled), err)
	})
	idle.Wait()

	floodCtx, cancel := context.WithTimeout(ctx, o.duration)
	defer cancel()
	flood, registrations, reads := newTally(), newTally(), newTally()
	var sent atomic.Int64
	progress("flood, registrations and reads", o.duration)
	start := time.Now()
	var wg sync.WaitGroup
	interval := time.Duration(float64(o.conns) / o.rate * float64(time.Second))
	for w := range o.conns {
		wg.Go(func() {
			next := start.Add(interval * time.Duration(w) / time.Duration(o.conns))
			for i := 0; ; i++ {
				if !sleepUntil(floodCtx, next) || sent.Add(1) > int64(o.maxSent) {
					return
				}
				// From the send: a connection waiting for its previous answer
				// (a 201 waits for bcrypt) sends late, which is not the 429's.
				sent := time.Now()
				status, err := floodRequest(w*1_000_000 + i)
				flood.record(status, time.Since(sent), err)
				next = next.Add(interval)
			}
		})
	}
	wg.Go(func() {
		every := o.duration / time.Duration(o.registers+1)
		openLoop(floodCtx, o.duration, 1/every.Seconds(), o.registers, register(registrations))
	})
	wg.Go(func() {
		openLoop(floodCtx, o.duration, o.readRate, 1<<30, func(scheduled time.Time) {
			status, _, err := reader.do(http.MethodGet, readURL, nil)
			reads.record(status, time.Since(scheduled), err)
		})
	})
	wg.Wait()

	report.FloodSeconds = time.Since(start).Seconds()
	report.FloodSent = flood.sent
	report.FloodByStatus = flood.byStatus()
	report.TooManyRequests = flood.of(http.StatusTooManyRequests)
	report.RegistrationsSent = registrations.sent
	report.RegistrarByStatus = registrations.byStatus()
	report.RegistrarCreated = registrations.of(http.StatusCreated)
	report.RegistrarIdle = idleRegistrations.of(http.StatusCreated)
	if report.RegistrarIdle.P99 > 0 {
		report.RegistrarP99Ratio = report.RegistrarCreated.P99 / report.RegistrarIdle.P99
	}
	report.ReadsIdle = idleReads.of(http.StatusOK)
	report.ReadsFlooded = reads.of(http.StatusOK)
	report.ReadsFloodedByStatus = reads.byStatus()
	if report.ReadsIdle.P99 > 0 {
		report.ReadP99Ratio = report.ReadsFlooded.P99 / report.ReadsIdle.P99
	}
	if o.pid > 0 {
		report.PeakRSSMiB = peakRSSMiB(o.pid)
	}
	return report, nil
}

// floodRoute returns the request the flooder sends, by its number: a
// registration, or a move of the flooder's own account (registered here,
// before the idle phase) to the address of the reader's user, a 409 that
// compares the password each time.
func floodRoute(o floodOptions, run string, flooder *simClient) (func(i int) (int, error), error) {
	if o.route == "register" {
		return func(i int) (int, error) {
			status, _, err := flooder.do(http.MethodPost, o.url+"/users", floodBody(run, "flood", i))
			return status, err
		}, nil
	}
	ownID, err := flooder.registerOwn(o.url, floodBody(run, "flooder", 0))
	if err != nil {
		return nil, fmt.Errorf("register the flooder's account: %w", err)
	}
	held := fmt.Sprintf("%s-%s-%d@example.com", "reader", run, 0) // floodBody's address of the reader's user
	change, _ := json.Marshal(map[string]string{"email": held, "password": "flood-test-password"})
	return func(int) (int, error) {
		status, _, err := flooder.doWith(http.MethodPut, o.url+"/users/"+ownID+"/email", change, map[string]string{"If-Match": "*"})
		return status, err
	}, nil
}

// openLoop calls send at rate per second, each on schedule in its own
// goroutine (at most 256 at once), for d or until ctx ends, at most n times;
// it returns once every send returned.
func openLoop(ctx context.Context, d time.Duration, rate float64, n int, send func(scheduled time.Time)) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	interval := time.Duration(float64(time.Second) / rate)
	slots := make(chan struct{}, 256)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < n; i++ {
		scheduled := start.Add(time.Duration(i) * interval)
		if !sleepUntil(ctx, scheduled) {
			break
		}
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Go(func() {
			defer func() { <-slots }()
			send(scheduled)
		})
	}
	wg.Wait()
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	timer := time.NewTimer(time.Until(t))
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-timer.C:
		return ctx.Err() == nil
	}
}

// floodBody is a registration of user i of who in this run.
func floodBody(run, who string, i int) []byte {
	body, _ := json.Marshal(map[string]string{
		"name":     "Flood User",
		"email":    fmt.Sprintf("%s-%s-%d@example.com", who, run, i),
		"password": "flood-test-password",
	})
	return body
}

func progress(phase string, d time.Duration) {
	fmt.Fprintf(os.Stderr, "loadgen: %s for %s\n", phase, d)
}

func (r FloodReport) print(out io.Writer) {
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	row := func(name, format string, args ...any) { _, _ = fmt.Fprintf(w, name+"\t"+format+"\n", args...) }
	lat := func(l Latencies) string {
		return fmt.Sprintf("%.2f / %.2f / %.2f / %.2f ms (%d)", l.P50, l.P95, l.P99, l.Max, l.Samples)
	}
	statuses := func(m map[string]int) string {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b bytes.Buffer
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s ×%d", k, m[k])
		}
		return b.String()
	}
	met := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	row("clients", "%s: flooder %s, registrar %s, reader %s", r.Clients, flooderAddr, registrarAddr, readerAddr)
	row("flood", "%d requests in %.1f s over %d connections (%.0f/s scheduled)", r.FloodSent, r.FloodSeconds, r.FloodConns, r.FloodRatePerS)
	row("  answers", "%s", statuses(r.FloodByStatus))
	row("  429 latency p50/p95/p99/max", "%s; p99 ≤ %s: %s", lat(r.TooManyRequests), tooManyP99Target,
		met(r.TooManyRequests.Samples > 0 && r.TooManyRequests.P99 <= float64(tooManyP99Target.Milliseconds())))
	row("flooder's route", "%s", r.Route)
	row("registrar", "%d sent in the flood: %s; every one 201: %s", r.RegistrationsSent, statuses(r.RegistrarByStatus),
		met(r.RegistrationsSent > 0 && r.RegistrarCreated.Samples == r.RegistrationsSent))
	row("  201 latency alone p50/p95/p99/max", "%s", lat(r.RegistrarIdle))
	row("  201 latency in the flood p50/p95/p99/max", "%s", lat(r.RegistrarCreated))
	row("  201 p99 in the flood / alone", "%.2f; ≤ %.0f: %s", r.RegistrarP99Ratio, registrarP99RatioTarget,
		met(r.RegistrarP99Ratio > 0 && r.RegistrarP99Ratio <= registrarP99RatioTarget))
	row("reads alone p50/p95/p99/max", "%s", lat(r.ReadsIdle))
	row("reads in the flood p50/p95/p99/max", "%s", lat(r.ReadsFlooded))
	row("  answers", "%s", statuses(r.ReadsFloodedByStatus))
	row("read p99 in the flood / alone", "%.2f; ≤ %.0f: %s", r.ReadP99Ratio, readP99RatioTarget,
		met(r.ReadP99Ratio > 0 && r.ReadP99Ratio <= readP99RatioTarget))
	if r.PeakRSSMiB > 0 {
		row("service peak RSS", "%.1f MiB", r.PeakRSSMiB)
	}
	_ = w.Flush()
}
