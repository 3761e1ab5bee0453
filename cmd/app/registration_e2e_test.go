package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// e2eCases are the (database, transport) pairs TestE2E runs on.
var e2eCases = []struct{ backend, pubsub string }{
	{"postgres", "gochannel"},
	{"postgres", "sql"},
	{"postgres", "amqp"},
	{"sqlite", "sql"},
	{"mysql", "sql"},
	{"mysql", "amqp"},
	{"postgres", "nats"},
	{"postgres", "redis"},
	{"postgres", "googlecloud"},
	{"postgres", "sqs"},
}

// TestE2E: the registration journey on every database and transport. Users
// register (in any letter case, concurrently, with bad input), each gets one
// welcome email and the signup points, a restart redoes nothing, and no
// secret is found anywhere the service writes.
func TestE2E(t *testing.T) {
	t.Parallel()
	backends := map[string]testenv.Backend{}
	for _, b := range testenv.Backends() {
		backends[b.Name] = b
	}
	for _, c := range e2eCases {
		backend, ok := backends[c.backend]
		require.True(t, ok, "backend %s", c.backend)
		t.Run(c.backend+"/"+c.pubsub, func(t *testing.T) {
			t.Parallel()
			j := startJourney(t, backend, c.pubsub)
			t.Run("health", j.health)
			j.registerUsers(t)
			t.Run("one welcome email and the signup points per user", j.effectsOfEachUser)
			t.Run("duplicate email in another letter case", j.duplicateEmailInAnotherCase)
			t.Run("50 concurrent registrations of one email", j.concurrentRegistrationsOfOneEmail)
			t.Run("request ids: the server's correlates, the client's is kept beside", j.requestIDs)
			t.Run("64-character, 72-byte password is accepted", j.longestPassword)
			t.Run("bad input", j.badInput)
			t.Run("every registration has its effects once", j.everyRegistrationHasItsEffectsOnce)
			j.proc.Stop(t)
			j.restart(t)
			t.Run("no response is 5xx", j.noResponseIs5xx)
			t.Run("no secret leaks", j.noSecretLeaks)
			t.Run("logs", j.logs)
			// A last look, after everything settled: still one email per user.
			for _, u := range j.registered() {
				assert.Equal(t, 1, j.d.SMTP.CountTo(u.Email), u.Email)
			}
		})
	}
}

// journey is the state of one TestE2E case, step after step.
type journey struct {
	d       *e2e.Deployment
	tap     *e2e.Tap   // the events exchange on amqp, the events subject on nats, nil otherwise
	scanned []*e2e.Tap // on nats: every message of the namespace, for the secrets scan
	proc    *e2e.Process
	api     *e2e.Client
	clients []*e2e.Client
	run     string

	users   []e2e.User // the first 20
	last201 time.Time  // of the first 20
	// created is every user registered, and the refused racers whose
	// passwords must not leak either (without an id).
	created []e2e.User
}

// startJourney serves the binary on the backend and transport; any
// transport but amqp gets an unreachable AMQP_URL, any but nats an
// unreachable NATS_URL, and any but redis an unreachable REDIS_URL, which
// proves it needs none of them.
func startJourney(t *testing.T, backend testenv.Backend, pubsub string) *journey {
	j := &journey{d: e2e.Deploy(t, e2e.Config{PubSub: pubsub, Database: backend.URL, SMTP: true}), run: e2e.RunID()}
	if pubsub == transport.KindAMQP || pubsub == transport.KindNATS || pubsub == transport.KindGoogleCloud ||
		pubsub == transport.KindSQS {
		j.tap = j.d.TapEvents(t)
	}
	if pubsub == transport.KindNATS || pubsub == transport.KindGoogleCloud || pubsub == transport.KindSQS {
		j.scanned = j.d.TapEveryExchange(t)
	}
	if pubsub == transport.KindRedis {
		j.d.TapRedisStreams(t) // tap groups keep the streams whole for the scan
	}
	j.d.TapSQLTopics(t)
	started := time.Now()
	j.proc, j.api = j.d.Serve(t)
	j.clients = append(j.clients, j.api)
	t.Logf("serving in %s", time.Since(started).Round(time.Millisecond))
	return j
}

func (j *journey) addCreated(users ...e2e.User) { j.created = append(j.created, users...) }

// registered returns the users created with an id.
func (j *journey) registered() []e2e.User {
	var out []e2e.User
	for _, u := range j.created {
		if u.ID != "" {
			out = append(out, u)
		}
	}
	return out
}

func (j *journey) health(t *testing.T) {
	for _, path := range []string{"/healthz", "/readyz"} {
		r := j.api.MustGet(t, path)
		assert.Equal(t, http.StatusOK, r.Status, r.String())
	}
}

// registerUsers registers 20 users, in various letter cases, each readable
// right after its 201.
func (j *journey) registerUsers(t *testing.T) {
	j.users = make([]e2e.User, 20)
	for i := range j.users {
		email := fmt.Sprintf("user%02d.%s@example.com", i, j.run)
		switch i % 3 {
		case 1:
			email = fmt.Sprintf("User%02d.%s@Example.COM", i, j.run)
		case 2:
			email = fmt.Sprintf("Mixed.Case+%02d.%s@Sub.Example.org", i, j.run)
		}
		j.users[i] = e2e.User{
			Name:     fmt.Sprintf("E2E User %02d", i),
			Email:    email,
			Password: fmt.Sprintf("pw-%s-%02d-correct-horse", j.run, i),
		}
	}
	for i := range j.users {
		u := &j.users[i]
		r, err := j.api.Register(*u, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
		j.last201 = time.Now()
		body := r.JSON()
		require.NotNil(t, body, "JSON body: %s", r.Body)
		assert.ElementsMatch(t, []string{"id", "name", "email", "email_verified", "locale", "registered_at", "version", "session"},
			keysOf(body), r.String())
		assert.NotEmpty(t, r.SessionToken(), "a session comes with the 201")
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
		j.addCreated(*u)

		got := j.api.MustGet(t, "/users/"+id)
		require.Equal(t, http.StatusOK, got.Status, "readable with its session right after its 201: %s", got)
		delete(body, "session")
		assert.Equal(t, body, got.JSON())
	}
	ids := map[string]bool{}
	for _, u := range j.users {
		ids[u.ID] = true
	}
	require.Len(t, ids, len(j.users), "distinct ids")
}

func (j *journey) effectsOfEachUser(t *testing.T) {
	smtp := j.d.SMTP
	wait := e2e.EffectsTimeout - time.Since(j.last201)
	effectsDone := func() bool {
		for _, u := range j.users {
			if smtp.CountTo(u.Email) == 0 {
				return false
			}
		}
		for _, u := range j.users {
			if !j.api.HasSignupPoints(u.ID) {
				return false
			}
		}
		return true
	}
	e2e.RequireProgress(t, j.d.DB, effectsDone, wait,
		"every user has an email and %d points within %s of the last 201", e2e.SignupPoints, e2e.EffectsTimeout)
	t.Logf("effects done %s after the last 201", time.Since(j.last201).Round(time.Millisecond))

	assert.Equal(t, len(j.users), len(smtp.Messages()), "emails in all")
	for _, u := range j.users {
		e2e.AssertWelcomeEmail(t, smtp, u)
		p, ok := j.api.Points(u.ID)
		require.True(t, ok)
		assert.Equal(t, u.ID, p.UserID)
		assert.Equal(t, e2e.SignupPoints, p.Balance)
		if assert.Len(t, p.Entries, 1, u.Email) {
			assert.Equal(t, e2e.SignupPoints, p.Entries[0].Amount)
			assert.Equal(t, "signup", p.Entries[0].Reason)
			assert.False(t, p.Entries[0].GrantedAt.IsZero())
		}
	}
}

func (j *journey) duplicateEmailInAnotherCase(t *testing.T) {
	users := j.users
	for _, email := range []string{users[0].Email, swapCase(users[1].Email), strings.ToUpper(users[2].Email)} {
		r, err := j.api.Register(e2e.User{Name: "Someone Else", Email: email, Password: "another-password"}, nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusConflict, r.Status, r.String())
		code, _ := r.Error()
		assert.Equal(t, "email-taken", code, r.String())
	}
}

// concurrentRegistrationsOfOneEmail: of 50 registrations of one email at
// once, in 50 letter cases, one gets its 201 and the others 409.
func (j *journey) concurrentRegistrationsOfOneEmail(t *testing.T) {
	const n = 50
	email := fmt.Sprintf("race.%s@example.com", j.run)
	racers := make([]e2e.User, n)
	for i := range racers {
		racers[i] = e2e.User{Name: fmt.Sprintf("Racer %02d", i), Email: caseVariant(email, i),
			Password: fmt.Sprintf("pw-%s-race-%02d", j.run, i)}
	}
	results := make([]e2e.Response, n)
	errs := make([]error, n)
	e2e.Burst(func() {
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range racers {
			wg.Go(func() {
				<-start
				results[i], errs[i] = j.api.Register(racers[i], nil)
			})
		}
		close(start)
		wg.Wait()
	})
	statuses := map[int]int{}
	for i, r := range results {
		require.NoError(t, errs[i])
		statuses[r.Status]++
		switch r.Status {
		case http.StatusCreated:
			racers[i].ID = r.ID()
		case http.StatusConflict:
			code, _ := r.Error()
			assert.Equal(t, "email-taken", code, r.String())
		default:
			assert.Fail(t, "unexpected status", r.String())
		}
	}
	assert.Equal(t, map[int]int{http.StatusCreated: 1, http.StatusConflict: n - 1}, statuses)
	// The losers' passwords are secrets too, though never stored.
	for _, racer := range racers {
		if racer.ID == "" {
			j.addCreated(e2e.User{Password: racer.Password})
		}
	}
	for _, racer := range racers {
		if racer.ID != "" {
			j.addCreated(racer)
		}
	}
}

// requestIDs: the server's id of one request correlates both handlers'
// lines and the event; the client's X-Request-ID is kept beside it.
func (j *journey) requestIDs(t *testing.T) {
	requestID := "e2e-" + j.run + "-request"
	u := e2e.User{Name: "Correlated User", Email: "Correlated." + j.run + "@Example.com", Password: "pw-" + j.run + "-correlated"}
	r, err := j.api.Register(u, http.Header{"X-Request-Id": {requestID}})
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, r.Status, r.String())
	serverID := r.Header.Get("X-Request-ID")
	_, err = uuid.Parse(serverID)
	require.NoError(t, err, "the server's own id is echoed: %q", serverID)
	assert.Equal(t, requestID, r.Header.Get("X-Client-Request-ID"), "the client's is echoed beside")
	u.ID = r.ID()
	j.addCreated(u)

	db := j.d.DB
	var metadata string
	require.NoError(t, db.QueryRow(db.Rebind(`SELECT metadata FROM events WHERE stream_id = ?`), u.ID).Scan(&metadata))
	var md map[string]any
	require.NoError(t, json.Unmarshal([]byte(metadata), &md))
	assert.Equal(t, serverID, md["correlation_id"], "events.metadata: %s", metadata)
	assert.Equal(t, requestID, md["client_request_id"], "events.metadata: %s", metadata)

	handled := func(handler string) bool {
		for _, record := range j.proc.Stdout.JSONLines() {
			if record["msg"] == "message handled" && record["handler"] == handler &&
				record["correlation_id"] == serverID && record["client_request_id"] == requestID {
				return true
			}
		}
		return false
	}
	e2e.RequireProgress(t, db, func() bool {
		return handled("SendWelcomeEmailOnUserRegistered") && handled("SeedSignupPointsOnUserRegistered")
	}, e2e.EffectsTimeout, "a %q line with correlation_id %s and client_request_id %s for each handler",
		"message handled", serverID, requestID)
}

func (j *journey) longestPassword(t *testing.T) {
	// 8 two-byte characters, the run id, then ASCII up to 64 characters.
	password := "éàüöñçøß" + j.run
	password += strings.Repeat("p", 64-utf8.RuneCountInString(password))
	u := e2e.User{Name: "Long Password", Email: "long.pw." + j.run + "@example.com", Password: password}
	require.Len(t, u.Password, 72)
	require.Equal(t, 64, utf8.RuneCountInString(u.Password))
	j.addCreated(j.api.MustRegister(t, u))
}

// badInput: malformed and invalid registrations, bad ids, unknown users and
// routes each get their status and error code.
func (j *journey) badInput(t *testing.T) {
	j.badRegistrations(t)
	j.badPaths(t)
}

func (j *journey) badRegistrations(t *testing.T) {
	valid := func(overrides map[string]any) string {
		fields := map[string]any{"name": "Bad Input", "email": "bad.input." + j.run + "@example.com", "password": "pw-" + j.run + "-bad-input"}
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
			r, err := j.api.Post("/users", contentType, body, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.wantStatus, r.Status, e2e.Tail(r.String(), 5))
			code, fields := r.Error()
			assert.Equal(t, tt.wantCode, code)
			if tt.wantFields != nil {
				assert.Equal(t, tt.wantFields, fields)
			}
		})
	}
}

func (j *journey) badPaths(t *testing.T) {
	unknown := uuid.NewString()
	for _, tt := range []struct {
		method, path string
		wantStatus   int
		wantCode     string
	}{
		{http.MethodGet, "/users/not-a-uuid", 400, "invalid-id"},
		{http.MethodGet, "/users/not-a-uuid/points", 400, "invalid-id"},
		{http.MethodGet, "/users/" + unknown, 401, "unauthenticated"},
		{http.MethodGet, "/users/" + unknown + "/points", 401, "unauthenticated"},
		{http.MethodDelete, "/users", 405, "method-not-allowed"},
		{http.MethodGet, "/no-such-route", 404, "not-found"},
	} {
		r, err := j.api.Request(tt.method, tt.path, "", nil, nil)
		require.NoError(t, err)
		assert.Equal(t, tt.wantStatus, r.Status, r.String())
		code, _ := r.Error()
		assert.Equal(t, tt.wantCode, code, r.String())
	}
}

// everyRegistrationHasItsEffectsOnce: everyone registered after the first
// 20 gets their email and points too, once, and nobody refused gets any.
func (j *journey) everyRegistrationHasItsEffectsOnce(t *testing.T) {
	registered, smtp := j.registered(), j.d.SMTP
	e2e.RequireProgress(t, j.d.DB, func() bool {
		for _, u := range registered {
			if smtp.CountTo(u.Email) == 0 || !j.api.HasSignupPoints(u.ID) {
				return false
			}
		}
		return true
	}, e2e.EffectsTimeout)
	for _, u := range registered {
		e2e.AssertWelcomeEmail(t, smtp, u)
	}
	assert.Equal(t, len(registered), len(smtp.Messages()), "one email per registration, none for a rejected one")
	events := j.d.DB.Count(t, `SELECT count(*) FROM events`)
	assert.Equal(t, len(registered), events, "one event per registration, none for a rejected one")
}

// restart starts the service again on the same database and queues: it
// redoes nothing, and new registrations still flow.
func (j *journey) restart(t *testing.T) {
	restarted, api := j.d.Serve(t)
	j.clients = append(j.clients, api)
	smtp := j.d.SMTP
	t.Run("restart", func(t *testing.T) {
		u := api.MustRegister(t, e2e.User{Name: "After Restart", Email: "after.restart." + j.run + "@example.com",
			Password: "pw-" + j.run + "-restart"})
		j.addCreated(u)
		e2e.RequireProgress(t, j.d.DB, func() bool {
			return smtp.CountTo(u.Email) > 0 && api.HasSignupPoints(u.ID)
		}, e2e.EffectsTimeout, "the first registration after a restart has its effects")
		registered := j.registered()
		for _, u := range registered {
			assert.Equal(t, 1, smtp.CountTo(u.Email), "one email to %s", u.Email)
			p, ok := api.Points(u.ID)
			if assert.True(t, ok) {
				assert.Len(t, p.Entries, 1, "one grant to %s", u.Email)
			}
		}
		assert.Equal(t, len(registered), len(smtp.Messages()))
		r, err := api.Register(j.users[3], nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusConflict, r.Status, "emails stay taken: %s", r)
	})
	restarted.Stop(t)
}

func (j *journey) responses() []e2e.Response {
	var out []e2e.Response
	for _, c := range j.clients {
		out = append(out, c.Responses()...)
	}
	return out
}

func (j *journey) noResponseIs5xx(t *testing.T) {
	for _, r := range j.responses() {
		assert.Less(t, r.Status, 500, e2e.Tail(r.String(), 5))
	}
}

// noSecretLeaks: no password and no bcrypt hash anywhere but in
// credentials, and no master key anywhere: tables, outputs, emails,
// responses and the messages on RabbitMQ or NATS.
func (j *journey) noSecretLeaks(t *testing.T) {
	db, registered := j.d.DB, j.registered()
	hashes := db.Count(t, `SELECT count(*) FROM credentials WHERE password_hash LIKE '$2a$%'`)
	assert.Equal(t, len(registered), hashes, "one bcrypt hash per user in credentials")
	require.GreaterOrEqual(t, hashes, len(j.users))

	if j.tap != nil {
		j.assertOneMessagePerRegistration(t, registered)
	}
	for _, tap := range j.scanned {
		assert.GreaterOrEqual(t, len(tap.Messages()), len(registered), "the tap holds the namespace's messages")
	}
	secrets := j.d.Secrets(j.created...)
	scanned := e2e.AssertNoSecrets(t, db, secrets, j.d.Processes(), j.d.SMTP, append(j.scanned, j.tap)...)
	if j.d.PubSub == transport.KindRedis {
		entries := j.d.RedisEntries(t)
		assert.GreaterOrEqual(t, len(entries), len(registered), "the streams hold the messages to scan")
		e2e.AssertNoSecretsInRedis(t, entries, secrets)
	}
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

	for _, r := range j.responses() {
		assert.Empty(t, e2e.SecretsIn(fmt.Sprint(r.Header)+"\n"+string(r.Body), secrets), e2e.Tail(r.String(), 5))
	}
}

// assertOneMessagePerRegistration: the tap of the events exchange got one
// message per registration.
func (j *journey) assertOneMessagePerRegistration(t *testing.T, registered []e2e.User) {
	want := map[string]int{}
	for _, u := range registered {
		want[u.ID] = 1
	}
	published := func() map[string]int {
		got := map[string]int{}
		for _, m := range j.tap.Messages() {
			var e struct {
				UserID string `json:"user_id"`
			}
			_ = json.Unmarshal(m.Body, &e)
			got[e.UserID]++
		}
		return got
	}
	e2e.AssertProgress(t, j.d.DB, func() bool { return len(published()) >= len(want) }, e2e.EffectsTimeout)
	assert.Equal(t, want, published(), "one message per registration on %s", e2e.EventsExchange(j.d.Namespace))
	assert.GreaterOrEqual(t, len(j.tap.Messages()), len(j.users))
}

func (j *journey) logs(t *testing.T) {
	for _, p := range j.d.Processes() {
		for _, line := range p.Stdout.Lines() {
			var record map[string]any
			assert.NoError(t, json.Unmarshal([]byte(line), &record), "stdout line is not JSON: %s", line)
		}
		all := p.Stdout.String() + p.Stderr.String()
		assert.NotContains(t, all, "panic")
		assert.NotContains(t, all, "goroutine ")
		for _, record := range p.Stdout.JSONLines() {
			if record["level"] == "ERROR" {
				t.Logf("error logged: %v", record)
			}
		}
	}
}

func keysOf(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
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
