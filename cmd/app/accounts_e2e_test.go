package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// from sends the request as the client at address, through the trusted
// proxy on 127.0.0.1, with the extra header values.
func from(address string, extra ...string) http.Header {
	header := http.Header{"X-Forwarded-For": {address}}
	for i := 0; i+1 < len(extra); i += 2 {
		header.Set(extra[i], extra[i+1])
	}
	return header
}

func signIn(t *testing.T, api *e2e.Client, address, email, password string) e2e.Response {
	t.Helper()
	body, err := json.Marshal(map[string]string{"email": email, "password": password})
	require.NoError(t, err)
	r, err := api.Post("/sessions", "application/json", bytes.NewReader(body), from(address))
	require.NoError(t, err)
	return r
}

// TestE2E_Sessions: a user reads itself with the session of its
// registration or of a sign-in, not after signing out, nor anonymously;
// a stranger's wrong passwords from one address do not keep the owner,
// at another, from signing in; and the owner of an address that a
// squatter registered takes the account back by a password reset.
func TestE2E_Sessions(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		database func(testing.TB) string
		pubsub   string
	}{
		{"sqlite/sql", nil, transport.KindSQL},
		{"postgres/sql", testenv.PostgresDatabase, transport.KindSQL},
		{"postgres/amqp", testenv.PostgresDatabase, transport.KindAMQP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := e2e.Deploy(t, e2e.Config{PubSub: tc.pubsub, Database: tc.database, SMTP: true,
				Vars: map[string]string{"TRUSTED_PROXIES": "127.0.0.1"}})
			proc, api := d.Serve(t)
			run := e2e.RunID()
			ada := e2e.User{Name: "Ada Lovelace", Email: "ada." + run + "@example.com", Password: "correct horse battery " + run}
			created, err := api.Register(ada, from("198.51.100.10"))
			require.NoError(t, err)
			require.Equal(t, http.StatusCreated, created.Status, created.String())
			ada.ID = created.ID()
			self := "/users/" + ada.ID
			bearer := func(token string) http.Header { return http.Header{"Authorization": {"Bearer " + token}} }
			read := func(header http.Header) int {
				r, err := api.Request(http.MethodGet, self, "", nil, header)
				require.NoError(t, err)
				return r.Status
			}

			assert.Equal(t, http.StatusOK, read(bearer(created.SessionToken())), "the registration's session reads its user")
			assert.Equal(t, http.StatusUnauthorized, read(http.Header{"Authorization": {""}}), "no session: 401")

			for range 5 {
				r := signIn(t, api, "192.0.2.66", ada.Email, "a stranger's guess "+run)
				require.Equal(t, http.StatusUnauthorized, r.Status, r.String())
			}
			r := signIn(t, api, "192.0.2.66", ada.Email, ada.Password)
			require.Equal(t, http.StatusTooManyRequests, r.Status, "the guessing address waits, even with the password: %s", r)
			assert.NotEmpty(t, r.Header.Get("Retry-After"))

			r = signIn(t, api, "198.51.100.10", ada.Email, ada.Password)
			require.Equal(t, http.StatusCreated, r.Status, "the owner signs in from another address: %s", r)
			session, _ := r.JSON()["token"].(string)
			require.NotEmpty(t, session)
			assert.Equal(t, http.StatusOK, read(bearer(session)))

			out, err := api.Request(http.MethodDelete, "/sessions/current", "", nil, bearer(session))
			require.NoError(t, err)
			require.Equal(t, http.StatusNoContent, out.Status, out.String())
			assert.Equal(t, http.StatusUnauthorized, read(bearer(session)), "signed out")
			assert.Equal(t, http.StatusOK, read(bearer(created.SessionToken())), "the other session lives on")

			other := api.MustRegister(t, e2e.User{Name: "Grace Hopper", Email: "grace." + run + "@example.com",
				Password: "another horse battery " + run})
			assert.Equal(t, http.StatusNotFound, read(bearer(api.Sessions().Token(other.ID))), "another user's session: 404")

			resetTakesBackASquattedAddress(t, d, api, run)
			proc.Stop(t)
		})
	}
}

// resetTakesBackASquattedAddress: a squatter registers the victim's
// address with a password of their choosing; the victim, who reads the
// address, resets the password: the squatter's password and sessions are
// gone, and the address is verified.
func resetTakesBackASquattedAddress(t *testing.T, d *e2e.Deployment, api *e2e.Client, run string) {
	t.Helper()
	victim := "victim." + run + "@example.com"
	squatter := e2e.User{Name: "Squatter", Email: victim, Password: "squatter's horse battery"}
	created, err := api.Register(squatter, from("192.0.2.77"))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, created.Status, created.String())
	squatter.ID = created.ID()

	for _, address := range []string{victim, "nobody." + run + "@example.com"} {
		body, _ := json.Marshal(map[string]string{"email": address})
		r, err := api.Post("/password-resets", "application/json", bytes.NewReader(body), from("198.51.100.20"))
		require.NoError(t, err)
		require.Equal(t, http.StatusAccepted, r.Status, "the same answer for any address: %s", r)
		assert.JSONEq(t, `{"status":"password-reset-requested"}`, string(r.Body))
	}
	link := pageLinkIn(t, d, victim, "reset the password", "/reset-password?")
	body, _ := json.Marshal(map[string]string{"user": link.Query().Get("user"), "token": link.Query().Get("token"),
		"password": "the victim's own horse battery"})
	r, err := api.Post("/password-resets/confirm", "application/json", bytes.NewReader(body), from("198.51.100.20"))
	require.NoError(t, err)
	require.Equal(t, http.StatusNoContent, r.Status, r.String())

	self, err := api.Request(http.MethodGet, "/users/"+squatter.ID, "", nil,
		http.Header{"Authorization": {"Bearer " + created.SessionToken()}})
	require.NoError(t, err)
	assert.Equal(t, http.StatusUnauthorized, self.Status, "the squatter's session ended")
	assert.Equal(t, http.StatusUnauthorized, signIn(t, api, "192.0.2.78", victim, squatter.Password).Status,
		"the squatter's password is gone")
	owner := signIn(t, api, "198.51.100.20", victim, "the victim's own horse battery")
	require.Equal(t, http.StatusCreated, owner.Status, owner.String())
	token, _ := owner.JSON()["token"].(string)
	self, err = api.Request(http.MethodGet, "/users/"+squatter.ID, "", nil, http.Header{"Authorization": {"Bearer " + token}})
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, self.Status, self.String())
	assert.Equal(t, true, self.JSON()["email_verified"], "the reset proved the address")
	assert.Empty(t, d.SMTP.MessagesTo("nobody."+run+"@example.com"), "no email to an unknown address")
}

// TestE2E_EmailChangeFloodHashesOnlyTheAllowance: one client sends 1,200
// changes of its own account's address to an address another user holds
// (409, nothing changes, repeatable, and each one compares a password).
// Past its allowance of password requests it is answered 429 before any
// hash, so another client's registrations all pass, none 503.
func TestE2E_EmailChangeFloodHashesOnlyTheAllowance(t *testing.T) {
	t.Parallel()
	d := e2e.Deploy(t, e2e.Config{PubSub: transport.KindSQL, Vars: map[string]string{
		"TRUSTED_PROXIES": "127.0.0.1", "RATE_LIMIT_PASSWORDS": "30/m,burst=10", "HASH_QUEUE_MAX": "64",
		"METRICS_ADDR": "127.0.0.1:0",
	}})
	proc, api := d.Serve(t)
	run := e2e.RunID()
	held := api.MustRegister(t, e2e.User{Name: "Held Address", Email: "held." + run + "@example.com", Password: "held horse battery"})
	eve := e2e.User{Name: "Eve", Email: "eve." + run + "@example.com", Password: "eve's horse battery"}
	created, err := api.Register(eve, from("192.0.2.66"))
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, created.Status, created.String())
	change := fmt.Sprintf(`{"email":%q,"password":%q}`, held.Email, eve.Password)
	hashes := func() float64 { // each hash or comparison waits for a turn once
		t.Helper()
		m, err := proc.MetricsClient(t).Metrics()
		require.NoError(t, err)
		return m.Value("onboard_password_hash_wait_seconds_count")
	}
	hashedBefore := hashes()

	start := time.Now()
	statuses := make([]int, 1200)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 50 {
		wg.Go(func() {
			for i := range work {
				r, err := api.Request(http.MethodPut, "/users/"+created.ID()+"/email", "application/json",
					bytes.NewReader([]byte(change)), from("192.0.2.66", "If-Match", "*",
						"Authorization", "Bearer "+created.SessionToken()))
				if assert.NoError(t, err) {
					statuses[i] = r.Status
				}
			}
		})
	}
	registrations := make(chan e2e.Response, 10)
	wg.Go(func() {
		for i := range 10 {
			r, err := api.Register(e2e.User{Name: "Someone Else", Email: fmt.Sprintf("other%d.%s@example.com", i, run),
				Password: "other horse battery"}, from(fmt.Sprintf("203.0.113.%d", i+1)))
			if assert.NoError(t, err) {
				registrations <- r
			}
		}
		close(registrations)
	})
	for i := range statuses {
		work <- i
	}
	close(work)
	wg.Wait()
	elapsed := time.Since(start)

	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	// The burst, then one every two seconds; and one more for a refill
	// between the clock reads.
	allowed := 10 + int(elapsed.Seconds()/2) + 1
	assert.LessOrEqual(t, counts[http.StatusConflict], allowed, "changes answered 409: %v in %s", counts, elapsed)
	// The flooder's comparisons, beside the other client's 10 hashes.
	assert.LessOrEqual(t, hashes()-hashedBefore, float64(allowed+10), "passwords hashed or compared during the flood")
	assert.Equal(t, len(statuses), counts[http.StatusConflict]+counts[http.StatusTooManyRequests], "%v", counts)
	created201 := 0
	for r := range registrations {
		if assert.Equal(t, http.StatusCreated, r.Status, "another client's registration: %s", r) {
			created201++
		}
	}
	assert.Equal(t, 10, created201, "every other client's registration, none 503")
	t.Logf("flood answers %v in %s", counts, elapsed)
	proc.Stop(t)
}
