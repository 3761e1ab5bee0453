package main

import (
	"encoding/json"
	"fmt"
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
