package main

// End-to-end tests: the built binary against real databases (PostgreSQL,
// MySQL/MariaDB, SQLite), RabbitMQ and SMTP servers, driven over HTTP only,
// once per backend and transport.

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	amqp "github.com/rabbitmq/amqp091-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

const (
	// e2eStartTimeout bounds the wait for "onboard is serving".
	e2eStartTimeout = 30 * time.Second
	// e2eStopTimeout bounds a graceful stop after SIGTERM.
	e2eStopTimeout = 30 * time.Second
	// e2eFailTimeout bounds a start that must fail.
	e2eFailTimeout = 15 * time.Second
	// e2eEffectsTimeout bounds the wait for the email and the points.
	e2eEffectsTimeout = 5 * time.Second
	// e2ePoll is how often a condition is checked.
	e2ePoll = 50 * time.Millisecond

	e2eMailFrom     = "welcome@onboard.test"
	e2eSignupPoints = 100
	// e2eUnreachableAMQP is given to the transports that must not use RabbitMQ.
	e2eUnreachableAMQP = "amqp://guest:guest@127.0.0.1:1/"
)

// e2eNamespace is PUBSUB_NAMESPACE of the service under test.
const e2eNamespace = "e2e"

// The durable queues of the service's handlers on RabbitMQ: topic_handler.
var e2eServiceQueues = []string{
	e2eNamespace + ".events.UserRegistered_SendWelcomeEmailOnUserRegistered",
	e2eNamespace + ".events.UserRegistered_SeedSignupPointsOnUserRegistered",
	e2eNamespace + ".commands.RegisterUser_RegisterUserHandler",
	e2eNamespace + ".poison",
}

const (
	e2eEventsExchange = e2eNamespace + ".events.UserRegistered"
	e2ePoisonQueue    = e2eNamespace + "." + transport.PoisonTopic
)

var e2eBinary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if e2eBinary.dir != "" {
		_ = os.RemoveAll(e2eBinary.dir)
	}
	os.Exit(code)
}

// onboardBinary builds ./cmd/app once per test binary run. The tests that
// run the binary are end-to-end tests: skipped under -short.
func onboardBinary(t *testing.T) string {
	t.Helper()
	testenv.SkipIfShort(t, "end-to-end test (runs the built binary)")
	e2eBinary.once.Do(func() {
		dir, err := os.MkdirTemp("", "onboard-e2e-")
		if err != nil {
			e2eBinary.err = err
			return
		}
		e2eBinary.dir = dir
		path := filepath.Join(dir, "onboard")
		out, err := exec.Command("go", "build", "-o", path, ".").CombinedOutput()
		if err != nil {
			e2eBinary.err = fmt.Errorf("go build: %w\n%s", err, out)
			return
		}
		e2eBinary.path = path
	})
	require.NoError(t, e2eBinary.err)
	return e2eBinary.path
}

// e2eLog collects one output stream of the service, line by line.
type e2eLog struct {
	mu      sync.Mutex
	all     bytes.Buffer
	partial []byte
	lines   []string
	onLine  func(line string)
}

func (l *e2eLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.all.Write(p)
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := string(l.partial[:i])
		l.partial = l.partial[i+1:]
		l.lines = append(l.lines, line)
		if l.onLine != nil {
			l.onLine(line)
		}
	}
	return len(p), nil
}

func (l *e2eLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.all.String()
}

// Lines returns the complete lines so far and an unterminated last one.
func (l *e2eLog) Lines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	lines := append([]string(nil), l.lines...)
	if len(l.partial) > 0 {
		lines = append(lines, string(l.partial))
	}
	return lines
}

// JSONLines decodes every stdout line that is a JSON object.
func (l *e2eLog) JSONLines() []map[string]any {
	var out []map[string]any
	for _, line := range l.Lines() {
		var record map[string]any
		if json.Unmarshal([]byte(line), &record) == nil {
			out = append(out, record)
		}
	}
	return out
}

// e2eProcess is one run of the binary.
type e2eProcess struct {
	cmd     *exec.Cmd
	stdout  *e2eLog
	stderr  *e2eLog
	serving chan string
	exited  chan struct{}
	waitErr error
}

// e2eEnv is the service's configuration: every variable it reads is set, so
// nothing leaks in from the environment of the test.
func e2eEnv(overrides map[string]string) []string {
	vars := map[string]string{
		"PUBSUB":           "gochannel",
		"PUBSUB_NAMESPACE": e2eNamespace,
		"DATABASE_URL":     "",
		"AMQP_URL":         e2eUnreachableAMQP,
		"SMTP_URL":         "",
		"MAIL_FROM":        e2eMailFrom,
		"HTTP_ADDR":        "127.0.0.1:0",
		"BCRYPT_COST":      "10",
		"SIGNUP_POINTS":    fmt.Sprint(e2eSignupPoints),
		// Up to 200 registrations at once wait for their turn to hash: the
		// bounded queue has tests of its own.
		"HASH_QUEUE_MAX": "1000",
		// Every test registers from 127.0.0.1: only the tests of the limit
		// turn it on.
		"RATE_LIMIT_REGISTRATIONS": "off",
		"TRUSTED_PROXIES":          "",
		"LOG_LEVEL":                "info",
		"EMAIL_RETRY_MAX_AGE":      DefaultRetryMaxAge.String(),
		"EMAIL_RETRY_FIRST_DELAY":  DefaultRetryDelay.String(),
	}
	for k, v := range overrides {
		vars[k] = v
	}
	env := os.Environ()
	for k, v := range vars {
		env = append(env, k+"="+v) // later entries win
	}
	return env
}

// runBinary starts the binary; it is killed when the test ends if still running.
func runBinary(t *testing.T, env map[string]string) *e2eProcess {
	t.Helper()
	p := &e2eProcess{
		stdout:  &e2eLog{},
		stderr:  &e2eLog{},
		serving: make(chan string, 1),
		exited:  make(chan struct{}),
	}
	p.stdout.onLine = func(line string) {
		var record struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		if json.Unmarshal([]byte(line), &record) == nil && record.Msg == "onboard is serving" {
			select {
			case p.serving <- record.Addr:
			default:
			}
		}
	}
	p.cmd = exec.Command(onboardBinary(t))
	p.cmd.Env = e2eEnv(env)
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	require.NoError(t, p.cmd.Start())
	go func() {
		p.waitErr = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		if t.Failed() {
			// Every line but the HTTP access log, which would drown the rest.
			var lines []string
			for _, line := range p.stdout.Lines() {
				if !strings.Contains(line, `"msg":"http request"`) {
					lines = append(lines, line)
				}
			}
			t.Logf("service stdout, without the HTTP requests:\n%s", tail(strings.Join(lines, "\n"), 300))
			t.Logf("service stderr:\n%s", tail(p.stderr.String(), 50))
		}
	})
	return p
}

func tail(text string, lines int) string {
	all := strings.Split(text, "\n")
	if len(all) > lines {
		all = append([]string{fmt.Sprintf("[... %d lines]", len(all)-lines)}, all[len(all)-lines:]...)
	}
	return strings.Join(all, "\n")
}

// waitServing returns the HTTP address the service logged once ready.
func (p *e2eProcess) waitServing(t *testing.T) string {
	t.Helper()
	select {
	case addr := <-p.serving:
		require.NotEmpty(t, addr)
		return addr
	case <-p.exited:
		t.Fatalf("the service exited before serving: %v\nstderr: %s", p.waitErr, p.stderr.String())
	case <-time.After(e2eStartTimeout):
		t.Fatalf("the service did not log %q within %s", "onboard is serving", e2eStartTimeout)
	}
	return ""
}

// stop sends SIGTERM and asserts a clean exit.
func (p *e2eProcess) stop(t *testing.T) {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	start := time.Now()
	select {
	case <-p.exited:
	case <-time.After(e2eStopTimeout):
		t.Fatalf("the service did not exit within %s of SIGTERM", e2eStopTimeout)
	}
	t.Logf("stopped in %s", time.Since(start).Round(time.Millisecond))
	assert.NoError(t, p.waitErr, "exit status after SIGTERM")
	assert.Equal(t, 0, p.cmd.ProcessState.ExitCode())
}

// e2eResponse is one HTTP exchange, kept for the final scans.
type e2eResponse struct {
	Method, Path string
	Status       int
	Header       http.Header
	Body         []byte
}

func (r e2eResponse) String() string {
	return fmt.Sprintf("%s %s -> %d %s", r.Method, r.Path, r.Status, r.Body)
}

// JSON decodes the body into a map.
func (r e2eResponse) JSON() map[string]any {
	var body map[string]any
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return nil
	}
	return body
}

// Error returns the code and fields of an error body.
func (r e2eResponse) Error() (code string, fields map[string]string) {
	var body struct {
		Error struct {
			Code    string            `json:"code"`
			Message string            `json:"message"`
			Fields  map[string]string `json:"fields"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &body); err != nil {
		return "", nil
	}
	return body.Error.Code, body.Error.Fields
}

// e2eAPI is an HTTP client of the service that records every response.
type e2eAPI struct {
	base   string
	client *http.Client

	mu        sync.Mutex
	responses []e2eResponse
}

func newE2EAPI(addr string) *e2eAPI {
	return &e2eAPI{base: "http://" + addr, client: &http.Client{Timeout: 60 * time.Second}}
}

func (a *e2eAPI) send(req *http.Request) (e2eResponse, error) {
	resp, err := a.client.Do(req)
	if err != nil {
		return e2eResponse{}, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return e2eResponse{}, fmt.Errorf("%s %s: read body: %w", req.Method, req.URL.Path, err)
	}
	r := e2eResponse{Method: req.Method, Path: req.URL.Path, Status: resp.StatusCode, Header: resp.Header, Body: body}
	a.mu.Lock()
	a.responses = append(a.responses, r)
	a.mu.Unlock()
	return r, nil
}

func (a *e2eAPI) get(path string) (e2eResponse, error) {
	req, err := http.NewRequest(http.MethodGet, a.base+path, nil)
	if err != nil {
		return e2eResponse{}, err
	}
	return a.send(req)
}

func (a *e2eAPI) post(path, contentType string, body io.Reader, header http.Header) (e2eResponse, error) {
	req, err := http.NewRequest(http.MethodPost, a.base+path, body)
	if err != nil {
		return e2eResponse{}, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("Content-Type", contentType)
	return a.send(req)
}

type e2eUser struct {
	ID, Name, Email, Password string
}

func (a *e2eAPI) register(u e2eUser, header http.Header) (e2eResponse, error) {
	body, err := json.Marshal(map[string]string{"name": u.Name, "email": u.Email, "password": u.Password})
	if err != nil {
		return e2eResponse{}, err
	}
	return a.post("/users", "application/json", bytes.NewReader(body), header)
}

func (a *e2eAPI) mustGet(t *testing.T, path string) e2eResponse {
	t.Helper()
	r, err := a.get(path)
	require.NoError(t, err)
	return r
}

func (a *e2eAPI) all() []e2eResponse {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]e2eResponse(nil), a.responses...)
}

// pointsOf reads a user's points, or false when they cannot be read.
func (a *e2eAPI) pointsOf(id string) (e2ePoints, bool) {
	r, err := a.get("/users/" + id + "/points")
	if err != nil || r.Status != http.StatusOK {
		return e2ePoints{}, false
	}
	var p e2ePoints
	if json.Unmarshal(r.Body, &p) != nil {
		return e2ePoints{}, false
	}
	return p, true
}

type e2ePoints struct {
	UserID  string `json:"user_id"`
	Balance int    `json:"balance"`
	Entries []struct {
		Amount    int       `json:"amount"`
		Reason    string    `json:"reason"`
		GrantedAt time.Time `json:"granted_at"`
	} `json:"entries"`
}

// amqpTap is a temporary exclusive queue bound to an exchange of the
// service: it receives a copy of everything the service publishes there.
type amqpTap struct {
	mu       sync.Mutex
	messages []amqp.Delivery
}

func (tap *amqpTap) all() []amqp.Delivery {
	tap.mu.Lock()
	defer tap.mu.Unlock()
	return append([]amqp.Delivery(nil), tap.messages...)
}

// amqpRunLock is the PostgreSQL advisory lock key that serializes the runs
// of the service on RabbitMQ: its queue names are fixed, so two services on
// the same broker (two test processes) would share, and steal from, the
// same queues.
const amqpRunLock = 0x6f6e626f617264 // "onboard"

// amqpRunLockName is the same lock on a MySQL server (GET_LOCK), taken only
// when no PostgreSQL server is configured.
const amqpRunLockName = "onboard_e2e_amqp_queues"

// lockServiceQueues holds the lock until the test ends: the PostgreSQL
// advisory lock on the TEST_POSTGRES_URL server when that is set, else, for
// a MySQL run, GET_LOCK on that run's server. A session lock takes no
// transaction id, so it holds back no watermill-sql delivery.
func lockServiceQueues(t testing.TB, db *testenv.DB) {
	t.Helper()
	if os.Getenv(testenv.PostgresURLVar) == "" && db != nil && db.Dialect == "mysql" {
		lockServiceQueuesOnMySQL(t, db)
		return
	}
	pg, err := sql.Open("pgx", testenv.URL(t, testenv.PostgresURLVar))
	require.NoError(t, err)
	t.Cleanup(func() { _ = pg.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := pg.Conn(ctx)
	require.NoError(t, err)
	start := time.Now()
	_, err = conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(amqpRunLock))
	require.NoError(t, err, "wait for another test run of the service on RabbitMQ")
	if waited := time.Since(start); waited > time.Second {
		t.Logf("waited %s for another test run of the service on RabbitMQ", waited.Round(time.Millisecond))
	}
	t.Cleanup(func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(amqpRunLock))
		_ = conn.Close()
	})
}

// lockServiceQueuesOnMySQL takes the lock with GET_LOCK, which is server-wide.
func lockServiceQueuesOnMySQL(t testing.TB, db *testenv.DB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	start := time.Now()
	var got sql.NullInt64
	require.NoError(t, conn.QueryRowContext(ctx, `SELECT GET_LOCK(?, 300)`, amqpRunLockName).Scan(&got))
	require.True(t, got.Valid && got.Int64 == 1, "wait for another test run of the service on RabbitMQ")
	if waited := time.Since(start); waited > time.Second {
		t.Logf("waited %s for another test run of the service on RabbitMQ", waited.Round(time.Millisecond))
	}
	t.Cleanup(func() {
		_, _ = conn.ExecContext(context.Background(), `SELECT RELEASE_LOCK(?)`, amqpRunLockName)
		_ = conn.Close()
	})
}

// resetServiceQueues deletes the service's durable queues, so no message
// left by an earlier run can reach this one.
func resetServiceQueues(t testing.TB, amqpURL string) {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err, "connect to %s", testenv.AMQPURLVar)
	defer func() { _ = conn.Close() }()
	for _, queue := range e2eServiceQueues {
		// A new channel per call: a 404 closes the channel it happens on.
		ch, err := conn.Channel()
		require.NoError(t, err)
		_, err = ch.QueueDelete(queue, false, false, false)
		var amqpErr *amqp.Error
		if errors.As(err, &amqpErr) && amqpErr.Code == amqp.NotFound {
			err = nil
		}
		require.NoError(t, err, "delete queue %s", queue)
		_ = ch.Close()
	}
}

// tapExchange binds a temporary queue to the fanout exchange.
func tapExchange(t *testing.T, amqpURL, exchange string) *amqpTap {
	t.Helper()
	conn, err := amqp.Dial(amqpURL)
	require.NoError(t, err, "connect to %s", testenv.AMQPURLVar)
	t.Cleanup(func() { _ = conn.Close() })
	ch, err := conn.Channel()
	require.NoError(t, err)
	// The same parameters as the service's durable pub/sub config.
	require.NoError(t, ch.ExchangeDeclare(exchange, "fanout", true, false, false, false, nil))
	queue, err := ch.QueueDeclare("", false, true, true, false, nil)
	require.NoError(t, err)
	require.NoError(t, ch.QueueBind(queue.Name, "", exchange, false, nil))
	deliveries, err := ch.Consume(queue.Name, "", true, true, false, false, nil)
	require.NoError(t, err)
	tap := &amqpTap{}
	go func() {
		for d := range deliveries {
			tap.mu.Lock()
			tap.messages = append(tap.messages, d)
			tap.mu.Unlock()
		}
	}()
	return tap
}

// Secret scanning. A forwarder envelope carries its message's payload in
// base64 and bytea columns print as hex, so the scan also looks inside
// base64 and hex runs, recursively.
var (
	bcryptPrefixes = []string{"$2a$", "$2b$", "$2y$"}
	base64Run      = regexp.MustCompile(`[A-Za-z0-9+/_-]{12,}={0,2}`)
	hexRun         = regexp.MustCompile(`\\x((?:[0-9a-fA-F]{2}){8,})`)
)

// secretsIn returns which of secrets text holds, plainly or encoded.
func secretsIn(text string, secrets []string) []string {
	found := map[string]bool{}
	var scan func(s string, depth int)
	scan = func(s string, depth int) {
		for _, secret := range secrets {
			if strings.Contains(s, secret) {
				found[secret] = true
			}
		}
		if depth == 3 {
			return
		}
		for _, m := range hexRun.FindAllStringSubmatch(s, -1) {
			if b, err := hex.DecodeString(m[1]); err == nil {
				scan(string(b), depth+1)
			}
		}
		for _, run := range base64Run.FindAllString(s, -1) {
			for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
				if b, err := enc.DecodeString(run); err == nil {
					scan(string(b), depth+1)
					break
				}
			}
		}
	}
	scan(text, 0)
	out := make([]string, 0, len(found))
	for secret := range found {
		out = append(out, secret)
	}
	sort.Strings(out)
	return out
}

// assertNoSecrets checks that no table but credentials, no output of the
// processes, no email and no message the taps caught holds one of secrets.
// It first proves that the scan finds the bcrypt hashes in credentials. It
// returns the tables it scanned.
func assertNoSecrets(t *testing.T, db *testenv.DB, secrets []string, procs []*e2eProcess,
	smtpServer *testsmtp.Server, taps ...*amqpTap) (scanned []string) {
	t.Helper()
	credentials := db.RowsAsText(t, `SELECT * FROM `+db.Quote("credentials"))
	require.NotEmpty(t, credentials)
	assert.Contains(t, secretsIn(strings.Join(credentials, "\n"), secrets), "$2a$", "the scan finds the hashes in credentials")

	for _, table := range publicTables(t, db) {
		if table == "credentials" {
			continue
		}
		scanned = append(scanned, table)
		for _, row := range db.RowsAsText(t, `SELECT * FROM `+db.Quote(table)) {
			assert.Empty(t, secretsIn(row, secrets), "table %s row %s", table, tail(row, 3))
		}
	}
	t.Logf("scanned tables: %s", strings.Join(scanned, ", "))
	for i, p := range procs {
		assert.Empty(t, secretsIn(p.stdout.String(), secrets), "stdout of process %d", i+1)
		assert.Empty(t, secretsIn(p.stderr.String(), secrets), "stderr of process %d", i+1)
	}
	for _, m := range smtpServer.Messages() {
		assert.Empty(t, secretsIn(string(m.Data), secrets), "email to %v", m.To)
	}
	for _, tap := range taps {
		if tap == nil {
			continue
		}
		for _, m := range tap.all() {
			assert.Empty(t, secretsIn(fmt.Sprint(m.Headers)+"\n"+string(m.Body), secrets), "AMQP message %s", m.Body)
		}
	}
	return scanned
}

func TestSecretsIn(t *testing.T) {
	hash := "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"
	event := `{"user_id":"u1","password_hash":"` + hash + `"}`
	envelope := `{"destination_topic":"events.UserRegistered","payload":"` +
		base64.StdEncoding.EncodeToString([]byte(event)) + `","metadata":{}}`
	secrets := append([]string{"correct-horse-42"}, bcryptPrefixes...)
	tests := []struct {
		name string
		text string
		want []string
	}{
		{name: "clean", text: `{"user_id":"u1","name":"Ada","email":"ada@example.com"}`, want: []string{}},
		{name: "plain hash", text: event, want: []string{"$2a$"}},
		{name: "$2b$ and $2y$", text: "x $2b$12$abc y $2y$10$abc", want: []string{"$2b$", "$2y$"}},
		{name: "base64 in an envelope", text: envelope, want: []string{"$2a$"}},
		{name: "envelope in a row", text: `(1,` + strings.ReplaceAll(envelope, `"`, `""`) + `)`, want: []string{"$2a$"}},
		{name: "envelope in base64", text: base64.StdEncoding.EncodeToString([]byte(envelope)), want: []string{"$2a$"}},
		{name: "bytea hex", text: `\x` + hex.EncodeToString([]byte(event)), want: []string{"$2a$"}},
		{name: "password", text: `{"password":"correct-horse-42"}`, want: []string{"correct-horse-42"}},
		{name: "password in base64", text: base64.RawURLEncoding.EncodeToString([]byte("pw=correct-horse-42")), want: []string{"correct-horse-42"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, secretsIn(tt.text, secrets))
		})
	}
}

// swapCase turns every letter of s to the other case.
func swapCase(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		case r >= 'A' && r <= 'Z':
			return r - 'A' + 'a'
		}
		return r
	}, s)
}

// caseVariant spells email with the letters whose index bit i is set in upper case.
func caseVariant(email string, i int) string {
	b := []byte(strings.ToLower(email))
	for j := range b {
		if i>>(j%6)&1 == 1 && b[j] >= 'a' && b[j] <= 'z' {
			b[j] -= 'a' - 'A'
		}
	}
	return string(b)
}

// e2eCases are the (database, transport) pairs TestE2E runs on.
var e2eCases = []struct{ backend, pubsub string }{
	{"postgres", "gochannel"},
	{"postgres", "sql"},
	{"postgres", "amqp"},
	{"sqlite", "sql"},
	{"mysql", "sql"},
	{"mysql", "amqp"},
}

func TestE2E(t *testing.T) {
	backends := map[string]testenv.Backend{}
	for _, b := range testenv.Backends() {
		backends[b.Name] = b
	}
	for _, c := range e2eCases {
		backend, ok := backends[c.backend]
		require.True(t, ok, "backend %s", c.backend)
		t.Run(c.backend+"/"+c.pubsub, func(t *testing.T) { testE2E(t, backend, c.pubsub) })
	}
}

func testE2E(t *testing.T, backend testenv.Backend, pubsub string) {
	dbURL := backend.URL(t)
	db := testenv.OpenDB(t, dbURL)
	amqpURL := e2eUnreachableAMQP // proves the other transports do not need RabbitMQ
	var tap *amqpTap
	if pubsub == "amqp" {
		amqpURL = testenv.URL(t, testenv.AMQPURLVar)
		lockServiceQueues(t, db)
		resetServiceQueues(t, amqpURL)
		tap = tapExchange(t, amqpURL, e2eEventsExchange)
	}
	smtpServer := testsmtp.Start(t)
	tapSQLTopics(t, db)

	started := time.Now()
	env := map[string]string{
		"PUBSUB":       pubsub,
		"DATABASE_URL": dbURL,
		"AMQP_URL":     amqpURL,
		"SMTP_URL":     smtpServer.URL(),
	}
	proc := runBinary(t, env)
	api := newE2EAPI(proc.waitServing(t))
	t.Logf("serving in %s", time.Since(started).Round(time.Millisecond))

	run := strings.ReplaceAll(uuid.NewString(), "-", "")[:8]
	var created []e2eUser // every user registered in this run

	t.Run("health", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz"} {
			r := api.mustGet(t, path)
			assert.Equal(t, http.StatusOK, r.Status, r.String())
		}
	})

	// 20 registrations, each readable at once.
	users := make([]e2eUser, 20)
	for i := range users {
		email := fmt.Sprintf("user%02d.%s@example.com", i, run)
		switch i % 3 {
		case 1:
			email = fmt.Sprintf("User%02d.%s@Example.COM", i, run)
		case 2:
			email = fmt.Sprintf("Mixed.Case+%02d.%s@Sub.Example.org", i, run)
		}
		users[i] = e2eUser{
			Name:     fmt.Sprintf("E2E User %02d", i),
			Email:    email,
			Password: fmt.Sprintf("pw-%s-%02d-correct-horse", run, i),
		}
	}
	var last201 time.Time
	for i := range users {
		u := &users[i]
		r, err := api.register(*u, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		last201 = time.Now()
		body := r.JSON()
		require.NotNil(t, body, "JSON body: %s", r.Body)
		assert.ElementsMatch(t, []string{"id", "name", "email", "email_verified", "locale", "registered_at", "version"}, keysOf(body), r.String())
		assert.NotContains(t, body, "password")
		id, _ := body["id"].(string)
		_, err = uuid.Parse(id)
		require.NoError(t, err, "id %q", id)
		u.ID = id
		assert.Equal(t, u.Name, body["name"])
		assert.Equal(t, u.Email, body["email"], "the email as typed")
		assert.Equal(t, "/users/"+id, r.Header.Get("Location"))
		at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(body["registered_at"]))
		if assert.NoError(t, err) {
			assert.WithinDuration(t, time.Now(), at, time.Minute)
		}
		created = append(created, *u)

		got := api.mustGet(t, "/users/"+id)
		require.Equal(t, http.StatusOK, got.Status, "readable right after its 201: %s", got)
		assert.Equal(t, body, got.JSON())
	}
	ids := map[string]bool{}
	for _, u := range users {
		ids[u.ID] = true
	}
	require.Len(t, ids, len(users), "distinct ids")

	t.Run("one welcome email and the signup points per user", func(t *testing.T) {
		wait := e2eEffectsTimeout - time.Since(last201)
		effectsDone := func() bool {
			for _, u := range users {
				if smtpServer.CountTo(u.Email) == 0 {
					return false
				}
			}
			for _, u := range users {
				if p, ok := api.pointsOf(u.ID); !ok || p.Balance != e2eSignupPoints {
					return false
				}
			}
			return true
		}
		requireProgress(t, db, effectsDone, wait,
			"every user has an email and %d points within %s of the last 201", e2eSignupPoints, e2eEffectsTimeout)
		t.Logf("effects done %s after the last 201", time.Since(last201).Round(time.Millisecond))

		assert.Equal(t, len(users), len(smtpServer.Messages()), "emails in all")
		for _, u := range users {
			assertWelcomeEmail(t, smtpServer, u)
			p, ok := api.pointsOf(u.ID)
			require.True(t, ok)
			assert.Equal(t, u.ID, p.UserID)
			assert.Equal(t, e2eSignupPoints, p.Balance)
			if assert.Len(t, p.Entries, 1, u.Email) {
				assert.Equal(t, e2eSignupPoints, p.Entries[0].Amount)
				assert.Equal(t, "signup", p.Entries[0].Reason)
				assert.False(t, p.Entries[0].GrantedAt.IsZero())
			}
		}
	})

	t.Run("duplicate email in another letter case", func(t *testing.T) {
		for _, email := range []string{users[0].Email, swapCase(users[1].Email), strings.ToUpper(users[2].Email)} {
			r, err := api.register(e2eUser{Name: "Someone Else", Email: email, Password: "another-password"}, nil)
			require.NoError(t, err)
			assert.Equal(t, http.StatusConflict, r.Status, r.String())
			code, _ := r.Error()
			assert.Equal(t, "email-taken", code, r.String())
		}
	})

	t.Run("50 concurrent registrations of one email", func(t *testing.T) {
		email := fmt.Sprintf("race.%s@example.com", run)
		const n = 50
		results := make([]e2eResponse, n)
		errs := make([]error, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				results[i], errs[i] = api.register(e2eUser{
					Name:     fmt.Sprintf("Racer %02d", i),
					Email:    caseVariant(email, i),
					Password: fmt.Sprintf("pw-%s-race-%02d", run, i),
				}, nil)
			}()
		}
		close(start)
		wg.Wait()
		statuses := map[int]int{}
		var winner e2eUser
		for i, r := range results {
			require.NoError(t, errs[i])
			statuses[r.Status]++
			switch r.Status {
			case http.StatusCreated:
				body := r.JSON()
				winner = e2eUser{
					ID: fmt.Sprint(body["id"]), Name: fmt.Sprintf("Racer %02d", i),
					Email: caseVariant(email, i), Password: fmt.Sprintf("pw-%s-race-%02d", run, i),
				}
			case http.StatusConflict:
				code, _ := r.Error()
				assert.Equal(t, "email-taken", code, r.String())
			default:
				assert.Fail(t, "unexpected status", r.String())
			}
		}
		assert.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusConflict: n - 1}, statuses)
		// The losers' passwords are secrets too, though never stored.
		for i := 0; i < n; i++ {
			if results[i].Status != http.StatusCreated {
				created = append(created, e2eUser{Password: fmt.Sprintf("pw-%s-race-%02d", run, i)})
			}
		}
		if winner.ID != "" {
			created = append(created, winner)
		}
	})

	// The server's id of one request correlates both handlers' lines and
	// the event; the client's X-Request-ID is kept beside it.
	requestID := "e2e-" + run + "-request"
	t.Run("request ids: the server's correlates, the client's is kept beside", func(t *testing.T) {
		u := e2eUser{Name: "Correlated User", Email: "Correlated." + run + "@Example.com", Password: "pw-" + run + "-correlated"}
		r, err := api.register(u, http.Header{"X-Request-Id": {requestID}})
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		serverID := r.Header.Get("X-Request-ID")
		_, err = uuid.Parse(serverID)
		require.NoError(t, err, "the server's own id is echoed: %q", serverID)
		assert.Equal(t, requestID, r.Header.Get("X-Client-Request-ID"), "the client's is echoed beside")
		u.ID = fmt.Sprint(r.JSON()["id"])
		created = append(created, u)

		var metadata string
		require.NoError(t, db.QueryRow(db.Rebind(`SELECT metadata FROM events WHERE stream_id = ?`), u.ID).Scan(&metadata))
		var md map[string]any
		require.NoError(t, json.Unmarshal([]byte(metadata), &md))
		assert.Equal(t, serverID, md["correlation_id"], "events.metadata: %s", metadata)
		assert.Equal(t, requestID, md["client_request_id"], "events.metadata: %s", metadata)

		handled := func(handler string) bool {
			for _, record := range proc.stdout.JSONLines() {
				if record["msg"] == "message handled" && record["handler"] == handler &&
					record["correlation_id"] == serverID && record["client_request_id"] == requestID {
					return true
				}
			}
			return false
		}
		requireProgress(t, db, func() bool {
			return handled("SendWelcomeEmailOnUserRegistered") && handled("SeedSignupPointsOnUserRegistered")
		}, e2eEffectsTimeout, "a %q line with correlation_id %s and client_request_id %s for each handler",
			"message handled", serverID, requestID)
	})

	t.Run("64-character, 72-byte password is accepted", func(t *testing.T) {
		// 8 two-byte characters, the run id, then ASCII up to 64 characters.
		password := "éàüöñçøß" + run
		password += strings.Repeat("p", 64-utf8.RuneCountInString(password))
		u := e2eUser{Name: "Long Password", Email: "long.pw." + run + "@example.com", Password: password}
		require.Len(t, u.Password, 72)
		require.Equal(t, 64, utf8.RuneCountInString(u.Password))
		r, err := api.register(u, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		u.ID = fmt.Sprint(r.JSON()["id"])
		created = append(created, u)
	})

	t.Run("bad input", func(t *testing.T) {
		valid := func(overrides map[string]any) string {
			fields := map[string]any{"name": "Bad Input", "email": "bad.input." + run + "@example.com", "password": "pw-" + run + "-bad-input"}
			for k, v := range overrides {
				if v == nil {
					delete(fields, k)
				} else {
					fields[k] = v
				}
			}
			b, err := json.Marshal(fields)
			require.NoError(t, err)
			return string(b)
		}
		big := `{"name":"` + strings.Repeat("a", 2<<20) + `","email":"big@example.com","password":"pw-big-body"}`
		tests := []struct {
			name        string
			contentType string
			body        string
			chunked     bool
			wantStatus  int
			wantCode    string
			wantFields  map[string]string
		}{
			{name: "malformed JSON", body: `{"name": "Ada",`, wantStatus: 400, wantCode: "malformed-json"},
			{name: "not JSON", body: `name=Ada`, wantStatus: 400, wantCode: "malformed-json"},
			{name: "empty body", body: ``, wantStatus: 400, wantCode: "malformed-json"},
			{name: "trailing data", body: valid(nil) + `{}`, wantStatus: 400, wantCode: "malformed-json"},
			{name: "array", body: `[]`, wantStatus: 400, wantCode: "malformed-json"},
			{name: "all fields missing", body: `{}`, wantStatus: 422, wantCode: "validation-failed",
				wantFields: map[string]string{"name": "required", "email": "required", "password": "required"}},
			{name: "email and password missing", body: `{"name":"Ada"}`, wantStatus: 422, wantCode: "validation-failed",
				wantFields: map[string]string{"email": "required", "password": "required"}},
			{name: "null name", body: valid(map[string]any{"name": json.RawMessage(`null`)}), wantStatus: 422,
				wantCode: "validation-failed", wantFields: map[string]string{"name": "required"}},
			{name: "invalid email", body: valid(map[string]any{"email": "not-an-email"}), wantStatus: 422,
				wantCode: "validation-failed", wantFields: map[string]string{"email": "invalid-format"}},
			{name: "73-byte password", body: valid(map[string]any{"password": strings.Repeat("p", 73)}), wantStatus: 422,
				wantCode: "validation-failed", wantFields: map[string]string{"password": "too-long"}},
			{name: "7-byte password", body: valid(map[string]any{"password": "1234567"}), wantStatus: 422,
				wantCode: "validation-failed", wantFields: map[string]string{"password": "too-short"}},
			{name: "2 MiB body", body: big, wantStatus: 413, wantCode: "body-too-large"},
			{name: "2 MiB body, chunked", body: big, chunked: true, wantStatus: 413, wantCode: "body-too-large"},
			{name: "not JSON content type", contentType: "text/plain", body: valid(nil), wantStatus: 415, wantCode: "unsupported-media-type"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				contentType := tt.contentType
				if contentType == "" {
					contentType = "application/json"
				}
				var body io.Reader = strings.NewReader(tt.body)
				if tt.chunked {
					body = struct{ io.Reader }{body} // hides the length
				}
				r, err := api.post("/users", contentType, body, nil)
				require.NoError(t, err)
				assert.Equal(t, tt.wantStatus, r.Status, tail(r.String(), 5))
				code, fields := r.Error()
				assert.Equal(t, tt.wantCode, code)
				if tt.wantFields != nil {
					assert.Equal(t, tt.wantFields, fields)
				}
			})
		}

		unknown := uuid.NewString()
		for _, tt := range []struct {
			path       string
			wantStatus int
			wantCode   string
		}{
			{"/users/not-a-uuid", 400, "invalid-id"},
			{"/users/not-a-uuid/points", 400, "invalid-id"},
			{"/users/" + unknown, 404, "user-not-found"},
			{"/users/" + unknown + "/points", 404, "user-not-found"},
		} {
			r := api.mustGet(t, tt.path)
			assert.Equal(t, tt.wantStatus, r.Status, r.String())
			code, _ := r.Error()
			assert.Equal(t, tt.wantCode, code, r.String())
		}
		for _, tt := range []struct {
			method, path string
			wantStatus   int
			wantCode     string
		}{
			{http.MethodDelete, "/users", 405, "method-not-allowed"},
			{http.MethodGet, "/no-such-route", 404, "not-found"},
		} {
			req, err := http.NewRequest(tt.method, api.base+tt.path, nil)
			require.NoError(t, err)
			r, err := api.send(req)
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, r.Status, r.String())
			code, _ := r.Error()
			assert.Equal(t, tt.wantCode, code, r.String())
		}
	})

	// Everyone registered later gets their email and points too, once.
	registered := make([]e2eUser, 0, len(created))
	for _, u := range created {
		if u.ID != "" {
			registered = append(registered, u)
		}
	}
	t.Run("every registration has its effects once", func(t *testing.T) {
		requireProgress(t, db, func() bool {
			for _, u := range registered {
				if smtpServer.CountTo(u.Email) == 0 {
					return false
				}
				if p, ok := api.pointsOf(u.ID); !ok || p.Balance != e2eSignupPoints {
					return false
				}
			}
			return true
		}, e2eEffectsTimeout)
		for _, u := range registered {
			assertWelcomeEmail(t, smtpServer, u)
		}
		assert.Equal(t, len(registered), len(smtpServer.Messages()), "one email per registration, none for a rejected one")
		events := db.Count(t, `SELECT count(*) FROM events`)
		assert.Equal(t, len(registered), events, "one event per registration, none for a rejected one")
	})

	proc.stop(t)

	// A restart on the same database and queues redoes nothing, and new
	// registrations still flow.
	restarted := runBinary(t, env)
	api2 := newE2EAPI(restarted.waitServing(t))
	t.Run("restart", func(t *testing.T) {
		u := e2eUser{Name: "After Restart", Email: "after.restart." + run + "@example.com", Password: "pw-" + run + "-restart"}
		r, err := api2.register(u, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		u.ID = fmt.Sprint(r.JSON()["id"])
		created = append(created, u)
		registered = append(registered, u)

		requireProgress(t, db, func() bool {
			p, ok := api2.pointsOf(u.ID)
			return smtpServer.CountTo(u.Email) > 0 && ok && p.Balance == e2eSignupPoints
		}, e2eEffectsTimeout, "the first registration after a restart has its effects")
		for _, u := range registered {
			assert.Equal(t, 1, smtpServer.CountTo(u.Email), "one email to %s", u.Email)
			p, ok := api2.pointsOf(u.ID)
			if assert.True(t, ok) {
				assert.Len(t, p.Entries, 1, "one grant to %s", u.Email)
			}
		}
		assert.Equal(t, len(registered), len(smtpServer.Messages()))
		r, err = api2.register(users[3], nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusConflict, r.Status, "emails stay taken: %s", r)
	})
	restarted.stop(t)

	processes := []*e2eProcess{proc, restarted}
	responses := append(api.all(), api2.all()...)

	t.Run("no response is 5xx", func(t *testing.T) {
		for _, r := range responses {
			assert.Less(t, r.Status, 500, tail(r.String(), 5))
		}
	})

	secrets := append([]string(nil), bcryptPrefixes...)
	for _, u := range created {
		secrets = append(secrets, u.Password)
	}
	t.Run("no secret leaks", func(t *testing.T) {
		hashes := db.Count(t, `SELECT count(*) FROM credentials WHERE password_hash LIKE '$2a$%'`)
		assert.Equal(t, len(registered), hashes, "one bcrypt hash per user in credentials")
		require.GreaterOrEqual(t, hashes, len(users))

		if tap != nil {
			want := map[string]int{}
			for _, u := range registered {
				want[u.ID] = 1
			}
			published := func() map[string]int {
				got := map[string]int{}
				for _, m := range tap.all() {
					var e struct {
						UserID string `json:"user_id"`
					}
					_ = json.Unmarshal(m.Body, &e)
					got[e.UserID]++
				}
				return got
			}
			assertProgress(t, db, func() bool { return len(published()) >= len(want) }, e2eEffectsTimeout)
			assert.Equal(t, want, published(), "one AMQP message per registration on %s", e2eEventsExchange)
			assert.GreaterOrEqual(t, len(tap.all()), len(users))
		}
		scanned := assertNoSecrets(t, db, secrets, processes, smtpServer, tap)
		assert.Contains(t, scanned, "events")
		assert.Contains(t, scanned, watermillsql.MessagesTable(db.DB, transport.OutboxTopic))
		var watermillRows int
		for _, table := range scanned {
			if strings.HasPrefix(table, "watermill_") &&
				!strings.HasPrefix(table, "watermill_offsets_") && !strings.HasPrefix(table, "watermill_groups_") {
				watermillRows += len(db.RowsAsText(t, `SELECT * FROM `+db.Quote(table)))
			}
		}
		assert.Positive(t, watermillRows, "the watermill tables hold messages to scan")

		for _, r := range responses {
			assert.Empty(t, secretsIn(fmt.Sprint(r.Header)+"\n"+string(r.Body), secrets), tail(r.String(), 5))
		}
	})

	t.Run("logs", func(t *testing.T) {
		for _, p := range processes {
			for _, line := range p.stdout.Lines() {
				var record map[string]any
				assert.NoError(t, json.Unmarshal([]byte(line), &record), "stdout line is not JSON: %s", line)
			}
			all := p.stdout.String() + p.stderr.String()
			assert.NotContains(t, all, "panic")
			assert.NotContains(t, all, "goroutine ")
			for _, record := range p.stdout.JSONLines() {
				if record["level"] == "ERROR" {
					t.Logf("error logged: %v", record)
				}
			}
		}
	})

	// A last look, after everything settled: still one email per user.
	for _, u := range registered {
		assert.Equal(t, 1, smtpServer.CountTo(u.Email), u.Email)
	}
}

// requireProgress waits for the service to make progress, and on timeout
// names the transactions that may have stalled it before failing the test.
func requireProgress(t *testing.T, db *testenv.DB, condition func() bool, wait time.Duration, msgAndArgs ...any) {
	t.Helper()
	if !assertProgress(t, db, condition, wait, msgAndArgs...) {
		t.FailNow()
	}
}

// assertProgress is requireProgress without stopping the test.
func assertProgress(t *testing.T, db *testenv.DB, condition func() bool, wait time.Duration, msgAndArgs ...any) bool {
	t.Helper()
	if assert.Eventually(t, condition, wait, e2ePoll, msgAndArgs...) {
		return true
	}
	testenv.LogOldTransactions(t, db.DB)
	return false
}

// assertWelcomeEmail checks the one email a user got.
func assertWelcomeEmail(t *testing.T, server *testsmtp.Server, u e2eUser) {
	t.Helper()
	messages := server.MessagesTo(u.Email)
	if !assert.Equal(t, 1, len(messages), "emails to %s", u.Email) {
		return
	}
	m := messages[0]
	assert.Equal(t, []string{u.Email}, m.To, "envelope recipient")
	assert.Equal(t, e2eMailFrom, m.From, "envelope sender")
	for header, want := range map[string]string{"From": e2eMailFrom, "To": u.Email} {
		value, err := m.Header(header)
		require.NoError(t, err)
		addr, err := mailAddress(value)
		if assert.NoError(t, err, "%s: %q", header, value) {
			assert.Equal(t, want, addr, header)
		}
	}
	subject, err := m.Header("Subject")
	require.NoError(t, err)
	assert.Contains(t, subject, "Welcome")
	text, err := m.Text()
	require.NoError(t, err)
	assert.Contains(t, text, "welcome to onboard")
	assert.NotContains(t, text, u.Name, "the email never carries the name")
}

// mailAddress returns the address of a header holding exactly one.
func mailAddress(header string) (string, error) {
	addr, err := mail.ParseAddress(header)
	if err != nil {
		return "", err
	}
	return addr.Address, nil
}

func keysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}

// tapGroup is a consumer group that nobody reads: on the SQL transport it
// keeps a copy of every message for the secrets scan.
const tapGroup = "e2e_tap"

// tapSQLTopics registers tapGroup on the SQL topics the service writes.
func tapSQLTopics(t *testing.T, db *testenv.DB) {
	t.Helper()
	for _, topic := range []string{transport.OutboxTopic, e2eEventsExchange, e2ePoisonQueue} {
		tap, err := watermillsql.NewSQLSubscriber(db.DB, tapGroup, watermill.NopLogger{})
		require.NoError(t, err)
		require.NoError(t, tap.SubscribeInitialize(topic), topic)
		require.NoError(t, tap.Close())
	}
}

// publicTables lists the tables of the service's database (the public
// schema on PostgreSQL), without SQLite's own.
func publicTables(t *testing.T, db *testenv.DB) []string {
	t.Helper()
	query := `SELECT table_name FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`
	switch db.Dialect {
	case "mysql":
		query = `SELECT table_name FROM information_schema.tables
		WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY table_name`
	case "sqlite":
		query = `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' ESCAPE '!' ORDER BY name`
	}
	rows, err := db.Query(query)
	require.NoError(t, err)
	defer func() { _ = rows.Close() }()
	var tables []string
	for rows.Next() {
		var name string
		require.NoError(t, rows.Scan(&name))
		tables = append(tables, name)
	}
	require.NoError(t, rows.Err())
	return tables
}

func TestE2E_StopsGracefullyDuringAnSMTPOutage(t *testing.T) {
	for _, pubsub := range []string{"gochannel", "sql", "amqp"} {
		t.Run(pubsub, func(t *testing.T) {
			dbURL := testenv.PostgresDatabase(t)
			amqpURL := e2eUnreachableAMQP
			if pubsub == "amqp" {
				amqpURL = testenv.URL(t, testenv.AMQPURLVar)
				lockServiceQueues(t, nil)
				resetServiceQueues(t, amqpURL)
			}
			smtpServer := testsmtp.Start(t)
			smtpServer.SetFailing(true)
			proc := runBinary(t, map[string]string{
				"PUBSUB":       pubsub,
				"DATABASE_URL": dbURL,
				"AMQP_URL":     amqpURL,
				"SMTP_URL":     smtpServer.URL(),
			})
			api := newE2EAPI(proc.waitServing(t))
			r, err := api.register(e2eUser{Name: "Stuck Mail", Email: "stuck@example.com", Password: "pw-stuck-mail"}, nil)
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, r.Status, r.String())
			require.Eventually(t, func() bool { return smtpServer.Rejected() >= 2 }, e2eEffectsTimeout, e2ePoll,
				"the welcome email is being retried")

			// A handler retrying a failing email must not hold up the stop.
			proc.stop(t)
		})
	}
}

func TestE2E_FailsFastOnBadConfiguration(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		needsDB  bool
		wantHint string // the error names what is wrong
	}{
		{name: "unknown PUBSUB", env: map[string]string{"PUBSUB": "bogus"}, wantHint: "PUBSUB"},
		{name: "BCRYPT_COST out of range", env: map[string]string{"BCRYPT_COST": "9"}, wantHint: "BCRYPT_COST"},
		{name: "bad RATE_LIMIT_REGISTRATIONS", env: map[string]string{"RATE_LIMIT_REGISTRATIONS": "lots"}, wantHint: "RATE_LIMIT_REGISTRATIONS"},
		{name: "bad TRUSTED_PROXIES", env: map[string]string{"TRUSTED_PROXIES": "proxy.internal"}, wantHint: "TRUSTED_PROXIES"},
		{name: "unreachable database", env: map[string]string{"DATABASE_URL": "postgres://postgres:s3cret@127.0.0.1:1/x"}, wantHint: "database"},
		{name: "DATABASE_URL not a database URL", env: map[string]string{"DATABASE_URL": "ftp://postgres:s3cret@127.0.0.1/x"}, wantHint: "DATABASE_URL"},
		{name: "unreachable RabbitMQ", env: map[string]string{"PUBSUB": "amqp", "AMQP_URL": "amqp://guest:s3cret@127.0.0.1:1/"}, needsDB: true, wantHint: "AMQP"},
		{name: "bad SMTP_URL", env: map[string]string{"SMTP_URL": "smtp://user:s3cret@:bad"}, needsDB: true, wantHint: "SMTP_URL"},
		{name: "bad HTTP_ADDR", env: map[string]string{"HTTP_ADDR": "127.0.0.1:99999"}, needsDB: true, wantHint: "HTTP_ADDR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{}
			if tt.needsDB {
				env["DATABASE_URL"] = testenv.PostgresDatabase(t)
			} else {
				env["DATABASE_URL"] = "postgres://postgres@127.0.0.1:1/never-reached"
			}
			for k, v := range tt.env {
				env[k] = v
			}
			start := time.Now()
			proc := runBinary(t, env)
			select {
			case <-proc.exited:
			case addr := <-proc.serving:
				t.Fatalf("the service started on %s", addr)
			case <-time.After(e2eFailTimeout):
				t.Fatalf("the service did not exit within %s", e2eFailTimeout)
			}
			t.Logf("exited in %s: %s", time.Since(start).Round(time.Millisecond), strings.TrimSpace(proc.stderr.String()))
			var exitErr *exec.ExitError
			require.ErrorAs(t, proc.waitErr, &exitErr, "a non-zero exit")
			assert.NotEqual(t, 0, exitErr.ExitCode())
			assert.True(t, exitErr.Exited(), "exited, not killed by a signal: %v", exitErr)

			stderr := strings.TrimRight(proc.stderr.String(), "\n")
			assert.NotEmpty(t, stderr)
			assert.NotContains(t, stderr, "\n", "a single line on stderr")
			assert.Contains(t, strings.ToLower(stderr), strings.ToLower(tt.wantHint))
			all := proc.stdout.String() + stderr
			assert.NotContains(t, all, "panic")
			assert.NotContains(t, all, "goroutine ")
			assert.NotContains(t, all, "s3cret", "no password from a URL")
		})
	}
}
