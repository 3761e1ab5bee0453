package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// erasureAdminToken is the operator's ADMIN_TOKEN in TestE2E_Erasure.
const erasureAdminToken = "erasure-admin-token-0123456789abcdef"

// erasureUsers is how many users TestE2E_Erasure registers; every other
// one is erased.
const erasureUsers = 50

// TestE2E_Erasure: 50 users registered (two of them refused by the mail
// server for good, two greylisted), 25 erased, half by themselves and half
// by the operator. No name or address of any user, live or erased, is found
// in plain text, base64 or hex in any table, any message the service
// published (taps of every exchange, subject or stream, poison included), the retry
// and poison lists, any log line, or, on SQLite, any file of the database's
// directory. The live users read, export and change their address; the
// erased answer 410, also after a rebuild of the read model; and an email
// still waiting for a user erased meanwhile is never sent, nor poisoned.
func TestE2E_Erasure(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		database func(testing.TB) string
		pubsub   string
	}{
		{"sqlite/sql", nil, transport.KindSQL},
		{"postgres/sql", testenv.PostgresDatabase, transport.KindSQL},
		{"postgres/amqp", testenv.PostgresDatabase, transport.KindAMQP},
		{"postgres/nats", testenv.PostgresDatabase, transport.KindNATS},
		{"postgres/redis", testenv.PostgresDatabase, transport.KindRedis},
		{"postgres/googlecloud", testenv.PostgresDatabase, transport.KindGoogleCloud},
		{"postgres/sqs", testenv.PostgresDatabase, transport.KindSQS},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := e2e.Deploy(t, e2e.Config{PubSub: tc.pubsub, Database: tc.database, SMTP: true,
				Vars: map[string]string{"ADMIN_TOKEN": erasureAdminToken, "EMAIL_RETRY_FIRST_DELAY": "300ms"}})
			var taps []*e2e.Tap
			switch tc.pubsub {
			case transport.KindAMQP, transport.KindNATS, transport.KindGoogleCloud, transport.KindSQS:
				taps = d.TapEveryExchange(t)
			case transport.KindRedis:
				d.TapRedisStreams(t) // tap groups keep the streams whole for the scan
			}
			d.TapSQLTopics(t)
			_, api := d.Serve(t)
			e := &erasure{d: d, api: api, run: e2e.RunID()}
			e.registerAll(t)
			e.erase(t)
			t.Run("the live read, export and change their address", e.liveUsersWork)
			t.Run("the erased are gone", e.erasedAreGone)
			t.Run("an email waiting for a user erased meanwhile is not sent", e.eraseBeforeTheWelcomeEmail)
			t.Run("a rebuild keeps the erased erased", e.rebuild)
			t.Run("a flipped byte is that user's corrupt-data alone", e.tamper)
			t.Run("no personal data at rest", func(t *testing.T) { e.scan(t, taps) })
		})
	}
}

// erasure is the state of one TestE2E_Erasure case.
type erasure struct {
	d   *e2e.Deployment
	api *e2e.Client
	run string
	// users are every user registered; live and erased split them.
	users, live, erased []e2e.User
	// personal is every name and address any user ever had.
	personal []string
}

var admin = http.Header{"Authorization": {"Bearer " + erasureAdminToken}}

func (e *erasure) newUser(label string) e2e.User {
	u := e2e.User{Name: "Person " + label + " " + e.run, Email: "person." + label + "." + e.run + "@example.com",
		Password: "correct horse battery " + e.run}
	e.personal = append(e.personal, u.Name, u.Email)
	return u
}

// registerAll registers the users and waits for their effects: the first
// two addresses are refused for good (their welcome emails are poisoned),
// the next two greylisted (theirs wait in the retry queue).
func (e *erasure) registerAll(t *testing.T) {
	for i := range erasureUsers {
		u := e.newUser(strconv.Itoa(i))
		switch i {
		case 0, 1:
			e.d.SMTP.Refuse(u.Email)
		case 2, 3:
			e.d.SMTP.Greylist(u.Email)
		}
		e.users = append(e.users, e.api.MustRegister(t, u))
	}
	e2e.RequireProgress(t, e.d.DB, func() bool {
		for i, u := range e.users {
			if !e.api.HasSignupPoints(u.ID) || (i >= 4 && e.d.SMTP.CountTo(u.Email) == 0) {
				return false
			}
		}
		return strings.Count(e.d.Operator(t, "poison", "list"), "SendWelcomeEmail") == 2 &&
			strings.Count(e.d.Operator(t, "retries", "list"), "SendWelcomeEmail") == 2
	}, e2e.EffectsTimeout*4, "every user has its points and email, two poisoned, two waiting")
}

// erase erases every other user: the even ones, by themselves with their
// password, or by the operator.
func (e *erasure) erase(t *testing.T) {
	for i, u := range e.users {
		if i%2 == 1 {
			e.live = append(e.live, u)
			continue
		}
		var r e2e.Response
		var err error
		if i%4 == 0 {
			body := strings.NewReader(`{"password":"` + u.Password + `"}`)
			r, err = e.api.Request(http.MethodDelete, "/users/"+u.ID, "application/json", body, nil)
		} else {
			r, err = e.api.Request(http.MethodDelete, "/users/"+u.ID, "", nil, admin)
		}
		require.NoError(t, err)
		require.Equal(t, http.StatusNoContent, r.Status, r.String())
		e.erased = append(e.erased, u)
	}
	require.Len(t, e.erased, erasureUsers/2)
}

func (e *erasure) liveUsersWork(t *testing.T) {
	for i, u := range e.live {
		r := e.api.MustGet(t, "/users/"+u.ID)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		assert.Equal(t, u.Email, r.JSON()["email"])
		assert.Equal(t, u.Name, r.JSON()["name"])

		export := e.api.MustGet(t, "/users/"+u.ID+"/export")
		require.Equal(t, http.StatusOK, export.Status, export.String())
		assert.Contains(t, string(export.Body), u.Email, "the export decrypts the events")
		if i == 0 {
			var doc, cli map[string]any
			require.NoError(t, json.Unmarshal(export.Body, &doc))
			require.NoError(t, json.Unmarshal([]byte(e.d.Operator(t, "users", "export", u.ID)), &cli))
			assert.Equal(t, doc, cli, "onboard users export prints the same document")
		}

		moved := e.newUser("moved." + strconv.Itoa(i)).Email
		body, err := json.Marshal(map[string]string{"email": moved, "password": u.Password})
		require.NoError(t, err)
		r, err = e.api.Request(http.MethodPut, "/users/"+u.ID+"/email", "application/json", bytes.NewReader(body),
			http.Header{"If-Match": {r.Header.Get("ETag")}})
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		e.live[i].Email = moved
	}
	e2e.RequireProgress(t, e.d.DB, func() bool {
		for _, u := range e.live {
			if e.d.SMTP.CountTo(u.Email) == 0 {
				return false
			}
		}
		return true
	}, e2e.EffectsTimeout*2, "every new address got its link")
}

func (e *erasure) erasedAreGone(t *testing.T) {
	for _, u := range e.erased {
		for _, path := range []string{"/users/" + u.ID, "/users/" + u.ID + "/export", "/users/" + u.ID + "/points"} {
			r, err := e.api.Request(http.MethodGet, path, "", nil, admin)
			require.NoError(t, err)
			assert.Equal(t, http.StatusGone, r.Status, r.String())
		}
		r, err := e.api.Request(http.MethodDelete, "/users/"+u.ID, "", nil, admin)
		require.NoError(t, err)
		assert.Equal(t, http.StatusGone, r.Status, "a second erasure: %s", r)
		r, err = e.api.Request(http.MethodGet, "/users/"+u.ID, "", nil, nil)
		require.NoError(t, err)
		assert.Equal(t, http.StatusUnauthorized, r.Status, "the user's sessions ended: %s", r)
		points := e.d.DB.Count(t, e.d.DB.Rebind(`SELECT count(*) FROM points_entries WHERE user_id = ?`), u.ID)
		assert.Equal(t, 1, points, "the ledger keeps its amounts under the id")
	}
	again := e.erased[len(e.erased)-1]
	again.Name = "Person again " + e.run
	e.personal = append(e.personal, again.Name)
	registered := e.api.MustRegister(t, again)
	assert.NotEqual(t, again.ID, registered.ID, "the released address registers a new user")
	e.live = append(e.live, registered)
}

// eraseBeforeTheWelcomeEmail erases a user whose welcome email waits in the
// retry queue: when it comes back, the handler finds the key gone and acks
// it, with a line naming the user's id.
func (e *erasure) eraseBeforeTheWelcomeEmail(t *testing.T) {
	u := e.newUser("late")
	e.d.SMTP.Greylist(u.Email)
	u = e.api.MustRegister(t, u)
	e2e.RequireProgress(t, e.d.DB, func() bool { return e.d.SMTP.RcptCount(u.Email) > 0 }, e2e.EffectsTimeout,
		"the welcome email was tried and greylisted")
	r, err := e.api.Request(http.MethodDelete, "/users/"+u.ID, "", nil, admin)
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, r.Status, r.String())
	e.erased = append(e.erased, u)
	e.d.SMTP.Ungreylist(u.Email)
	e2e.RequireProgress(t, e.d.DB, func() bool {
		return e.loggedErased(u.ID, "SendWelcomeEmailOnUserRegistered")
	}, e2e.EffectsTimeout*2, "the handler acked the erased user's event")
	assert.Zero(t, e.d.SMTP.CountTo(u.Email), "no email to the erased user")
	assert.Equal(t, 2, strings.Count(e.d.Operator(t, "poison", "list"), "SendWelcomeEmail"),
		"nothing poisoned but the two refused")
}

// loggedErased reports whether a process logged that handler acked an
// event of the erased user unhandled.
func (e *erasure) loggedErased(userID, handler string) bool {
	return e.logged(func(line map[string]any) bool {
		return line["msg"] == "event of an erased user acked unhandled: its key is gone" && line["user_id"] == userID &&
			line["handler"] == handler
	})
}

func (e *erasure) rebuild(t *testing.T) {
	out := e.d.Operator(t, "projections", "rebuild", "users")
	assert.Contains(t, out, "users rebuilt")
	for _, u := range e.erased {
		r, err := e.api.Request(http.MethodGet, "/users/"+u.ID, "", nil, admin)
		require.NoError(t, err)
		assert.Equal(t, http.StatusGone, r.Status, r.String())
	}
	for _, u := range e.live {
		r, err := e.api.Request(http.MethodGet, "/users/"+u.ID, "", nil, admin)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		assert.Equal(t, u.Email, r.JSON()["email"])
	}
}

// tamper flips a byte of a sealed field in one live user's first event
// and of another's wrapped key: each of them is answered 500 corrupt-data,
// logged with its id, and the other users read as before.
func (e *erasure) tamper(t *testing.T) {
	db := e.d.DB
	ada, bob := e.live[0], e.live[1]
	var payload string
	require.NoError(t, db.QueryRow(db.Rebind(`SELECT payload FROM events WHERE stream_id = ? AND stream_version = 1`),
		ada.ID).Scan(&payload))
	var fields map[string]any
	require.NoError(t, json.Unmarshal([]byte(payload), &fields))
	email := []byte(fields["email"].(string))
	email[len(email)-2] ^= 0x01
	fields["email"] = string(email)
	altered, err := json.Marshal(fields)
	require.NoError(t, err)
	_, err = db.Exec(db.Rebind(`UPDATE events SET payload = ? WHERE stream_id = ? AND stream_version = 1`),
		string(altered), ada.ID)
	require.NoError(t, err)
	var wrapped []byte
	require.NoError(t, db.QueryRow(db.Rebind(`SELECT ciphertext FROM user_keys WHERE user_id = ?`), bob.ID).Scan(&wrapped))
	wrapped[0] ^= 0x01
	_, err = db.Exec(db.Rebind(`UPDATE user_keys SET ciphertext = ? WHERE user_id = ?`), wrapped, bob.ID)
	require.NoError(t, err)

	for _, path := range []string{"/users/" + ada.ID + "/export", "/users/" + bob.ID} {
		r, err := e.api.Request(http.MethodGet, path, "", nil, admin)
		require.NoError(t, err)
		assert.Equal(t, http.StatusInternalServerError, r.Status, r.String())
		code, _ := r.Error()
		assert.Equal(t, "corrupt-data", code)
	}
	for _, id := range []string{ada.ID, bob.ID} {
		// Written before the answer, read from the process's output a
		// moment later.
		assert.Eventually(t, func() bool {
			return e.logged(func(line map[string]any) bool {
				text, _ := line["error"].(string)
				return line["msg"] == "stored user data is corrupt" && strings.Contains(text, id)
			})
		}, e2e.EffectsTimeout, e2e.Poll, "a line names user %s", id)
	}
	for _, u := range e.live[2:] {
		r, err := e.api.Request(http.MethodGet, "/users/"+u.ID, "", nil, admin)
		require.NoError(t, err)
		assert.Equal(t, http.StatusOK, r.Status, "another user: %s", r)
	}
	e2e.AssertNoPanic(t, e.d.Processes()...)
}

// logged reports whether a process wrote a line that matches.
func (e *erasure) logged(match func(line map[string]any) bool) bool {
	for _, p := range e.d.Processes() {
		for _, line := range p.Stdout.JSONLines() {
			if match(line) {
				return true
			}
		}
	}
	return false
}

// scan looks for every name and address any user had wherever the service
// keeps data: every table, every message tapped, the poison and retry
// lists, every line the processes wrote, and the SQLite files. Answers and
// the SMTP sink are not at rest, and the export's answer proves that the
// scan finds what is there.
func (e *erasure) scan(t *testing.T, taps []*e2e.Tap) {
	export := e.api.MustGet(t, "/users/"+e.live[2].ID+"/export") // the first two were tampered with
	require.NotEmpty(t, e2e.SecretsIn(string(export.Body), e.personal), "the scan finds what is there")

	var texts []string
	add := func(where, text string) { texts = append(texts, where+"\x00"+text) }
	tables := e2e.PublicTables(t, e.d.DB)
	for _, table := range tables {
		add("table "+table, strings.Join(e.d.DB.RowsAsText(t, `SELECT * FROM `+e.d.DB.Quote(table)), "\n"))
	}
	require.Contains(t, tables, "events")
	add("poison list", e.d.Operator(t, "poison", "list"))
	add("retries list", e.d.Operator(t, "retries", "list"))
	messages := 0
	for _, tap := range taps {
		for _, m := range tap.Messages() {
			add("message", fmt.Sprint(m.Headers)+"\n"+string(m.Body))
			messages++
		}
	}
	if e.d.PubSub == transport.KindRedis {
		for _, entry := range e.d.RedisEntries(t) {
			add("Redis entry "+entry.ID+" of "+entry.Stream, fmt.Sprint(entry.Values))
			messages++
		}
	}
	if len(taps) > 0 || e.d.PubSub == transport.KindRedis {
		assert.Greater(t, messages, erasureUsers, "the taps hold every message published")
	}
	for i, p := range e.d.Processes() {
		add(fmt.Sprintf("stdout of process %d", i+1), p.Stdout.String())
		add(fmt.Sprintf("stderr of process %d", i+1), p.Stderr.String())
	}
	if path, ok := strings.CutPrefix(e.d.DatabaseURL, "sqlite:"); ok {
		dir := filepath.Dir(path)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		for _, entry := range entries {
			data, err := os.ReadFile(filepath.Join(dir, entry.Name()))
			require.NoError(t, err)
			add("file "+entry.Name(), string(data))
		}
	}
	for _, text := range texts {
		where, text, _ := strings.Cut(text, "\x00")
		assert.Empty(t, e2e.SecretsIn(text, e.personal), "%s", where)
	}
}
