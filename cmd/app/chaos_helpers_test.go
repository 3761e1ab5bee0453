//go:build chaos

package main

// Helpers of the fault suite (chaos_test.go): a fault-injecting TCP proxy
// embedded in the test, a registration load, and the final count of every
// registration's effects.

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/google/uuid"
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

const (
	// chaosWorkers is how many registrations the load keeps in flight.
	chaosWorkers = 8
	// chaosSettleTimeout bounds the wait for every effect after the last
	// fault: a handler killed while holding a claim leaves it to expire.
	chaosSettleTimeout = adapters.ClaimLease + 90*time.Second
	// chaosLoadTimeout bounds a whole load.
	chaosLoadTimeout = 5 * time.Minute
	// chaosRecovery is how soon the service must work again after a
	// dependency returns.
	chaosRecovery = 5 * time.Second
)

// chaosTransports are the transports every scenario runs on.
var chaosTransports = []string{"sql", "amqp"}

// The event handlers, as named in the "message handled" log lines.
var chaosEventHandlers = []string{"SendWelcomeEmailOnUserRegistered", "SeedSignupPointsOnUserRegistered"}

// chaosProxy is a toxiproxy proxy running in the test process. Only the
// service under test goes through it; the test's own checks connect directly.
type chaosProxy struct {
	proxy *toxiproxy.Proxy
	addr  string
}

// startProxy proxies a loopback port to upstream (host:port) until the test ends.
func startProxy(t *testing.T, name, upstream string) *chaosProxy {
	t.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
	require.NoError(t, proxy.Start(), "start the %s proxy", name)
	t.Cleanup(proxy.Stop)
	// Start has bound the port: re-enabling the proxy listens on it again.
	return &chaosProxy{proxy: proxy, addr: proxy.Listen}
}

// cut disables the proxy: its connections are closed and new ones refused.
func (p *chaosProxy) cut() { p.proxy.Stop() }

// restore enables the proxy again on the same port.
func (p *chaosProxy) restore(t *testing.T) {
	t.Helper()
	require.NoError(t, p.proxy.Start(), "re-enable the %s proxy on %s", p.proxy.Name, p.addr)
}

// viaProxy returns rawURL with its host:port replaced by the proxy's.
func viaProxy(t *testing.T, rawURL string, p *chaosProxy) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	u.Host = p.addr
	return u.String()
}

// hostPort is the host:port of a URL, with the scheme's default port.
func hostPort(t *testing.T, rawURL, defaultPort string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	if u.Port() == "" {
		return u.Hostname() + ":" + defaultPort
	}
	return u.Host
}

// chaosEnv is one scenario's world: a fresh PostgreSQL database, an SMTP
// server, RabbitMQ when the transport is amqp, and proxies in front of the
// database and the broker when the scenario cuts them.
type chaosEnv struct {
	pubsub  string
	run     string
	db      *testenv.DB // direct, for the test's checks
	amqpURL string      // direct
	smtp    *testsmtp.Server
	// Proxies, nil unless asked for.
	dbProxy, amqpProxy, smtpProxy *chaosProxy
	// taps keep a copy of every message published on RabbitMQ's event and
	// poison exchanges, for the secrets scan (tapSQLTopics does it for the
	// tables).
	taps []*amqpTap
	// env is the service's configuration.
	env map[string]string
	// poisonBefore is the number of messages in the RabbitMQ poison queue
	// before the scenario.
	poisonBefore int
	// procs are the processes of the service started so far.
	procs []*e2eProcess
}

type chaosProxies struct{ db, amqp, smtp bool }

func newChaosEnv(t *testing.T, pubsub string, proxies chaosProxies) *chaosEnv {
	t.Helper()
	dbURL := testenv.PostgresDatabase(t)
	e := &chaosEnv{
		pubsub:  pubsub,
		run:     strings.ReplaceAll(uuid.NewString(), "-", "")[:8],
		db:      testenv.OpenDB(t, dbURL),
		amqpURL: e2eUnreachableAMQP,
		smtp:    testsmtp.Start(t),
	}
	tapSQLTopics(t, e.db)
	serviceDB, serviceAMQP, serviceSMTP := dbURL, e.amqpURL, e.smtp.URL()
	if proxies.smtp {
		e.smtpProxy = startProxy(t, "smtp", e.smtp.Addr())
		serviceSMTP = "smtp://" + e.smtpProxy.addr
	}
	if proxies.db {
		e.dbProxy = startProxy(t, "postgres", hostPort(t, dbURL, "5432"))
		serviceDB = viaProxy(t, dbURL, e.dbProxy)
	}
	if pubsub == "amqp" {
		e.amqpURL = testenv.URL(t, testenv.AMQPURLVar)
		lockServiceQueues(t, e.db)
		resetServiceQueues(t, e.amqpURL)
		e.poisonBefore = amqpQueueDepth(t, e.amqpURL, e2ePoisonQueue)
		e.taps = []*amqpTap{tapExchange(t, e.amqpURL, e2eEventsExchange), tapExchange(t, e.amqpURL, e2ePoisonQueue)}
		serviceAMQP = e.amqpURL
		if proxies.amqp {
			e.amqpProxy = startProxy(t, "rabbitmq", hostPort(t, e.amqpURL, "5672"))
			serviceAMQP = viaProxy(t, e.amqpURL, e.amqpProxy)
		}
	}
	e.env = map[string]string{
		"PUBSUB":       pubsub,
		"DATABASE_URL": serviceDB,
		"AMQP_URL":     serviceAMQP,
		"SMTP_URL":     serviceSMTP,
		"BCRYPT_COST":  "10",
	}
	return e
}

// start runs one process of the service and waits until it serves.
func (e *chaosEnv) start(t *testing.T) (*e2eProcess, *e2eAPI) {
	t.Helper()
	proc := runBinary(t, e.env)
	e.procs = append(e.procs, proc)
	return proc, newE2EAPI(proc.waitServing(t))
}

// users returns n new users of the scenario, with their own email addresses.
func (e *chaosEnv) users(scenario string, from, n int) []*chaosUser {
	out := make([]*chaosUser, n)
	for i := range out {
		k := from + i
		out[i] = &chaosUser{e2eUser: e2eUser{
			Name:     fmt.Sprintf("Chaos User %04d", k),
			Email:    fmt.Sprintf("chaos.%s.%04d.%s@example.com", scenario, k, e.run),
			Password: fmt.Sprintf("pw-%s-%04d-chaos", e.run, k),
		}, RequestID: fmt.Sprintf("chaos-%s-%04d-%s", scenario, k, e.run)}
	}
	return out
}

// amqpQueueDepth counts the ready messages of a durable queue, 0 if it is missing.
func amqpQueueDepth(t *testing.T, amqpURL, queue string) int {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err, "connect to %s", testenv.AMQPURLVar)
	defer func() { _ = conn.Close() }()
	ch, err := conn.Channel()
	require.NoError(t, err)
	q, err := ch.QueueDeclarePassive(queue, true, false, false, false, nil)
	var amqpErr *amqp.Error
	if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
		return 0
	}
	require.NoError(t, err, "inspect queue %s", queue)
	_ = ch.Close()
	return q.Messages
}

// poisoned counts the messages the scenario sent to the poison topic.
func (e *chaosEnv) poisoned(t *testing.T) int {
	t.Helper()
	if e.pubsub == "amqp" {
		return amqpQueueDepth(t, e.amqpURL, e2ePoisonQueue) - e.poisonBefore
	}
	n, err := countRows(e.db, `SELECT count(*) FROM `+e.db.Quote(watermillsql.MessagesTable(e.db.DB, e2ePoisonQueue))+
		` WHERE consumer_group = ?`, transport.PoisonGroup)
	require.NoError(t, err)
	return n
}

// chaosUser is one registration of a load and what became of it.
type chaosUser struct {
	e2eUser
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
func (u *chaosUser) record(r e2eResponse, err error, sent time.Time) {
	u.Sent, u.At, u.Took = true, time.Now(), time.Since(sent)
	if err != nil {
		u.Err = err
		return
	}
	u.Status = r.Status
	if r.Status == http.StatusCreated {
		u.ID, _ = r.JSON()["id"].(string)
	} else {
		u.Code, _ = r.Error()
	}
}

// register sends u's registration and records the outcome.
func (u *chaosUser) register(api *e2eAPI) {
	sent := time.Now()
	r, err := api.register(u.e2eUser, http.Header{"X-Request-Id": {u.RequestID}})
	u.record(r, err, sent)
}

// registerTraced is register with written called once the request is
// entirely written to the connection.
func (u *chaosUser) registerTraced(api *e2eAPI, written func()) {
	body := fmt.Sprintf(`{"name":%q,"email":%q,"password":%q}`, u.Name, u.Email, u.Password)
	trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { written() }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(context.Background(), trace),
		http.MethodPost, api.base+"/users", strings.NewReader(body))
	sent := time.Now()
	if err != nil {
		u.record(e2eResponse{}, err, sent)
		return
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", u.RequestID)
	r, err := api.send(req)
	u.record(r, err, sent)
}

// chaosTarget is where the load goes: a running service, or nothing while
// it is down, during which the load waits.
type chaosTarget struct {
	mu     sync.Mutex
	cond   *sync.Cond
	api    *e2eAPI
	closed bool
}

func newChaosTarget(t *testing.T, api *e2eAPI) *chaosTarget {
	target := &chaosTarget{api: api}
	target.cond = sync.NewCond(&target.mu)
	t.Cleanup(target.close)
	return target
}

// up sends the load to api.
func (c *chaosTarget) up(api *e2eAPI) {
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
func (c *chaosTarget) get() *e2eAPI {
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
func startLoad(users []*chaosUser, pick func(i int) *e2eAPI) *chaosLoad {
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
		chaosLoadTimeout, e2ePoll, "%d registrations answered 201", n)
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

// chaosState is what the database and the SMTP server hold.
type chaosState struct {
	owner   map[string]string // email key → user id
	creds   map[string]bool   // user id
	events  map[string]int    // user id → events in its stream
	grants  map[string]int    // user id → points entries
	emails  map[string]int    // lower-cased recipient → distinct messages (by Message-ID)
	claimed int               // effects claimed and not marked done
	outbox  int               // messages not yet forwarded
	total   int               // emails in all
	resent  int               // copies of a message already received (same Message-ID)
}

func countRows(db *testenv.DB, query string, args ...any) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	err := db.QueryRowContext(ctx, db.Rebind(query), args...).Scan(&n)
	return n, err
}

// keyCounts runs a query of (key, count) rows.
func keyCounts(db *testenv.DB, query string) (map[string]int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	out := map[string]int{}
	for rows.Next() {
		var key string
		var n int
		if err := rows.Scan(&key, &n); err != nil {
			return nil, err
		}
		out[key] = n
	}
	return out, rows.Err()
}

// snapshot reads the state; it never fails the test, so that it can run
// inside a wait.
func (e *chaosEnv) snapshot() (*chaosState, error) {
	s := &chaosState{owner: map[string]string{}, creds: map[string]bool{}, emails: map[string]int{}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rows, err := e.db.QueryContext(ctx, `SELECT email_key, user_id FROM user_emails`)
	if err != nil {
		return nil, err
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var key, id string
		if err := rows.Scan(&key, &id); err != nil {
			return nil, err
		}
		s.owner[key] = id
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	creds, err := keyCounts(e.db, `SELECT user_id, count(*) FROM credentials GROUP BY user_id`)
	if err != nil {
		return nil, err
	}
	for id := range creds {
		s.creds[id] = true
	}
	if s.events, err = keyCounts(e.db, `SELECT stream_id, count(*) FROM events GROUP BY stream_id`); err != nil {
		return nil, err
	}
	if s.grants, err = keyCounts(e.db, `SELECT user_id, count(*) FROM points_entries GROUP BY user_id`); err != nil {
		return nil, err
	}
	if s.claimed, err = countRows(e.db, `SELECT count(*) FROM processed_messages WHERE state <> 'done'`); err != nil {
		return nil, err
	}
	outbox := e.db.Quote(watermillsql.MessagesTable(e.db.DB, transport.OutboxTopic))
	if s.outbox, err = countRows(e.db, `SELECT count(*) FROM `+outbox+` WHERE consumer_group <> ?`, tapGroup); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for i, m := range e.smtp.Messages() {
		s.total++
		id := m.MessageID()
		if id == "" {
			id = fmt.Sprintf("without Message-ID %d", i)
		}
		if seen[id] {
			s.resent++
			continue
		}
		seen[id] = true
		for _, to := range m.To {
			s.emails[strings.ToLower(to)]++
		}
	}
	return s, nil
}

// settled reports whether every registration that was stored has its email
// and its grant, no effect is half done and the outbox is empty: nothing is
// left that could still add an effect.
func (s *chaosState) settled(users []*chaosUser) bool {
	if s.claimed > 0 || s.outbox > 0 {
		return false
	}
	for _, u := range users {
		id, stored := s.owner[strings.ToLower(u.Email)]
		if u.Status == http.StatusCreated {
			id, stored = u.ID, true
		}
		if stored && (s.emails[strings.ToLower(u.Email)] == 0 || s.grants[id] == 0) {
			return false
		}
	}
	return true
}

// settle waits until the state is settled, and says how long that took.
func (e *chaosEnv) settle(t *testing.T, users []*chaosUser) time.Duration {
	t.Helper()
	start := time.Now()
	assertProgress(t, e.db, func() bool {
		s, err := e.snapshot()
		return err == nil && s.settled(users)
	}, chaosSettleTimeout, "every stored registration has its email and grant, and nothing is in progress")
	return time.Since(start)
}

// chaosTally is the final count of a scenario.
type chaosTally struct {
	sent, created, other, noAnswer int
	noAnswerStored, otherStored    int
	emails, grants                 int
	duplicates, lost               int
	resent                         int            // emails sent again after a crash, as the same message
	statuses                       map[string]int // "503 unavailable" → count
	users                          []*chaosUser   // the registrations counted
	problems                       []string
	suspects                       []*chaosUser // the registrations with a problem
	unanswered                     []string     // the registrations without an answer, and why
}

// tally counts the effects of every sent registration: a 201 must have
// exactly one email and one grant; a registration without a 201 must be
// stored in full (user, credential, event, email, grant) or not at all.
func (e *chaosEnv) tally(t *testing.T, users []*chaosUser) chaosTally {
	t.Helper()
	s, err := e.snapshot()
	require.NoError(t, err, "read the final state")
	c := chaosTally{statuses: map[string]int{}, resent: s.resent, users: users}
	var suspect *chaosUser
	problem := func(format string, args ...any) {
		c.problems = append(c.problems, fmt.Sprintf(format, args...))
		if suspect != nil && (len(c.suspects) == 0 || c.suspects[len(c.suspects)-1] != suspect) {
			c.suspects = append(c.suspects, suspect)
		}
	}
	sentTo := map[string]bool{}
	for _, u := range users {
		if !u.Sent {
			continue
		}
		c.sent++
		suspect = u
		key := strings.ToLower(u.Email)
		sentTo[key] = true
		id, stored := s.owner[key]
		switch u.Status {
		case http.StatusCreated:
			c.created++
			if !stored || id != u.ID {
				c.lost++
				problem("%s: 201 with id %s, but its email belongs to %q", u.Email, u.ID, id)
				continue
			}
		case 0:
			c.noAnswer++
			if stored {
				c.noAnswerStored++
			}
			c.unanswered = append(c.unanswered, fmt.Sprintf("%s after %s", u, u.Took.Round(time.Millisecond)))
		default:
			c.other++
			c.statuses[fmt.Sprintf("%d %s", u.Status, u.Code)]++
			if stored {
				c.otherStored++
			}
		}
		emails := s.emails[key]
		c.emails += emails
		if !stored {
			if emails > 0 {
				c.lost++
				problem("%s: %d email(s), but no user stored", u, emails)
			}
			continue
		}
		grants := s.grants[id]
		c.grants += grants
		if emails > 1 {
			c.duplicates += emails - 1
			problem("%s: %d emails", u, emails)
		}
		if grants > 1 {
			c.duplicates += grants - 1
			problem("%s: %d grants", u, grants)
		}
		if emails == 0 || grants == 0 || !s.creds[id] || s.events[id] != 1 {
			c.lost++
			problem("%s: stored as %s with %d email(s), %d grant(s), credential %t, %d event(s)",
				u, id, emails, grants, s.creds[id], s.events[id])
		}
	}
	suspect = nil
	for to, n := range s.emails {
		if !sentTo[to] {
			c.duplicates += n
			problem("%d email(s) to %s, which nobody registered", n, to)
		}
	}
	return c
}

// report logs the scenario's line and fails the test on any loss or
// duplicate, with the service's log lines about the first registrations
// that went wrong.
func (e *chaosEnv) report(t *testing.T, c chaosTally, scenario string, extra ...string) {
	t.Helper()
	pubsub := e.pubsub
	line := fmt.Sprintf("chaos %s pubsub=%s: sent %d, 201 %d, other %d, emails %d (%d resent with the same Message-ID), grants %d, duplicates %d, lost %d, no answer %d (%d stored)",
		scenario, pubsub, c.sent, c.created, c.other, c.emails, c.resent, c.grants, c.duplicates, c.lost, c.noAnswer, c.noAnswerStored)
	if len(c.statuses) > 0 {
		var statuses []string
		for status, n := range c.statuses {
			statuses = append(statuses, fmt.Sprintf("%s ×%d", status, n))
		}
		sort.Strings(statuses)
		line += fmt.Sprintf(", other statuses [%s] (%d stored)", strings.Join(statuses, ", "), c.otherStored)
	}
	for _, x := range extra {
		line += ", " + x
	}
	t.Log(line)
	logSome(t, "problem: ", c.problems)
	logSome(t, "", c.unanswered)
	const traced = 3
	for _, u := range c.suspects[:min(traced, len(c.suspects))] {
		var lines []string
		for i, p := range e.procs {
			for _, line := range p.stdout.Lines() {
				if strings.Contains(line, `"client_request_id":"`+u.RequestID+`"`) {
					lines = append(lines, fmt.Sprintf("process %d: %s", i+1, line))
				}
			}
		}
		t.Logf("the service's lines about %s:\n\t%s", u.Email, strings.Join(lines, "\n\t"))
	}
	assert.Zero(t, c.lost, "registrations lost or half done")
	assert.Zero(t, c.duplicates, "effects done twice")
	assert.Positive(t, c.created, "some registrations succeeded")
	e.assertNoSecrets(t, c.users)
}

// assertNoSecrets scans the database, the service's output, the emails and
// the messages published on RabbitMQ for a bcrypt hash or a password.
func (e *chaosEnv) assertNoSecrets(t *testing.T, users []*chaosUser) {
	t.Helper()
	secrets := append([]string(nil), bcryptPrefixes...)
	for _, u := range users {
		secrets = append(secrets, u.Password)
	}
	assertNoSecrets(t, e.db, secrets, e.procs, e.smtp, e.taps...)
}

// logSome logs the first lines, and how many more there are.
func logSome(t *testing.T, prefix string, lines []string) {
	t.Helper()
	const shown = 10
	for i, line := range lines {
		if i == shown {
			t.Logf("  ... and %d more", len(lines)-shown)
			break
		}
		t.Log("  " + prefix + line)
	}
}

// handledBy counts a process's "message handled" log lines per event handler.
func handledBy(p *e2eProcess) map[string]int {
	out := map[string]int{}
	for _, record := range p.stdout.JSONLines() {
		if record["msg"] != "message handled" {
			continue
		}
		if handler, _ := record["handler"].(string); handler != "" {
			out[handler]++
		}
	}
	return out
}

// assertNoPanic checks the processes' output.
func assertNoPanic(t *testing.T, procs ...*e2eProcess) {
	t.Helper()
	for _, p := range procs {
		all := p.stdout.String() + p.stderr.String()
		assert.NotContains(t, all, "panic")
		assert.NotContains(t, all, "DATA RACE")
	}
}

// waitExit waits for a process that was signalled and checks a clean exit.
func waitExit(t *testing.T, p *e2eProcess) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(e2eStopTimeout):
		t.Fatalf("the service did not exit within %s of SIGTERM", e2eStopTimeout)
	}
	assert.NoError(t, p.waitErr, "exit status after SIGTERM")
}

// kill sends SIGKILL and waits for the process to be gone.
func kill(t *testing.T, p *e2eProcess) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Kill())
	select {
	case <-p.exited:
	case <-time.After(e2eStopTimeout):
		t.Fatalf("the service did not die within %s of SIGKILL", e2eStopTimeout)
	}
}

// ready asks /readyz; it answers false on any failure.
func ready(api *e2eAPI) (bool, string) {
	r, err := api.get("/readyz")
	if err != nil {
		return false, err.Error()
	}
	code, _ := r.Error()
	return r.Status == http.StatusOK, fmt.Sprintf("%d %s", r.Status, code)
}
