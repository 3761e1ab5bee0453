package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/internal/e2e"
	"github.com/onboard/onboard/internal/testenv"
)

// TestE2E_UserLifecycle: on every database and transport, the built binary
// with a real SMTP server: register, follow the welcome email's link,
// change the address against the version read (a stale one is 412), and
// twenty changes sent with one version, of which one succeeds.
func TestE2E_UserLifecycle(t *testing.T) {
	t.Parallel()
	for _, backend := range testenv.Backends() {
		for _, pubsub := range []string{transport.KindGoChannel, transport.KindSQL, transport.KindAMQP,
			transport.KindRedis, transport.KindGoogleCloud, transport.KindSQS} {
			if (pubsub == transport.KindRedis || pubsub == transport.KindGoogleCloud || pubsub == transport.KindSQS) &&
				backend.Name != "postgres" {
				continue // a broker apart from the database: one database is enough
			}
			t.Run(backend.Name+"/"+pubsub, func(t *testing.T) {
				t.Parallel()
				d := e2e.Deploy(t, e2e.Config{PubSub: pubsub, Database: backend.URL, SMTP: true})
				_, api := d.Serve(t)
				run := e2e.RunID()
				ada := api.MustRegister(t, e2e.User{Name: "Ada Lovelace", Email: "ada." + run + "@example.com",
					Password: "correct horse battery " + run})

				verifyByLink(t, d, api, ada)
				moved := changeEmail(t, d, api, ada, "lovelace."+run+"@example.org")
				concurrentChanges(t, api, moved, run)
			})
		}
	}
}

// linkIn returns the verification link of the email to address whose
// text contains what.
func linkIn(t *testing.T, d *e2e.Deployment, address, what string) *url.URL {
	t.Helper()
	return pageLinkIn(t, d, address, what, "/verify-email?")
}

// pageLinkIn returns the link to page (such as "/reset-password?") of the
// email to address whose text contains what.
func pageLinkIn(t *testing.T, d *e2e.Deployment, address, what, page string) *url.URL {
	t.Helper()
	text := mailWith(t, d, address, what)
	i := strings.Index(text, page)
	require.GreaterOrEqual(t, i, 0, "a link in %q", text)
	start := strings.LastIndex(text[:i], "http")
	link, err := url.Parse(strings.Fields(text[start:])[0])
	require.NoError(t, err)
	return link
}

// mailWith waits for the email to address whose text contains what, and
// returns its text.
func mailWith(t *testing.T, d *e2e.Deployment, address, what string) string {
	t.Helper()
	var text string
	require.Eventually(t, func() bool {
		for _, m := range d.SMTP.MessagesTo(address) {
			if body, err := m.Text(); err == nil && strings.Contains(body, what) {
				text = body
				return true
			}
		}
		return false
	}, e2e.EffectsTimeout, e2e.Poll, "an email to %s with %q", address, what)
	return text
}

func jsonOf(t *testing.T, r e2e.Response) map[string]any {
	t.Helper()
	body := r.JSON()
	require.NotNil(t, body, r.String())
	return body
}

func verifyByLink(t *testing.T, d *e2e.Deployment, api *e2e.Client, u e2e.User) {
	t.Helper()
	link := linkIn(t, d, u.Email, "welcome to onboard")
	require.Equal(t, u.ID, link.Query().Get("user"))
	page, err := api.Get("/verify-email?" + link.RawQuery)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, page.Status)
	assert.Contains(t, string(page.Body), `<form method="post" action="/verify-email">`)

	body := `{"token":"` + link.Query().Get("token") + `"}`
	r, err := api.Post("/users/"+u.ID+"/email-verification", "application/json", strings.NewReader(body), nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	got := api.MustGet(t, "/users/"+u.ID)
	assert.Equal(t, true, jsonOf(t, got)["email_verified"], got.String())
	assert.Equal(t, `"2"`, got.Header.Get("ETag"))
}

func put(t *testing.T, api *e2e.Client, u e2e.User, email, ifMatch string) e2e.Response {
	t.Helper()
	body, err := json.Marshal(map[string]string{"email": email, "password": u.Password})
	require.NoError(t, err)
	r, err := api.Request(http.MethodPut, "/users/"+u.ID+"/email", "application/json", bytes.NewReader(body),
		http.Header{"If-Match": {ifMatch}})
	require.NoError(t, err)
	return r
}

// changeEmail moves u to email: a stale If-Match first, then the right one;
// the new address gets a link and the old one a notice, once each.
func changeEmail(t *testing.T, d *e2e.Deployment, api *e2e.Client, u e2e.User, email string) e2e.User {
	t.Helper()
	stale := put(t, api, u, email, `"1"`)
	require.Equal(t, http.StatusPreconditionFailed, stale.Status, stale.String())
	code, _ := stale.Error()
	assert.Equal(t, "version-mismatch", code)

	r := put(t, api, u, email, `"2"`)
	require.Equal(t, http.StatusOK, r.Status, r.String())
	assert.Equal(t, `"3"`, r.Header.Get("ETag"))
	link := linkIn(t, d, email, "please confirm your address")
	assert.Equal(t, u.ID, link.Query().Get("user"))
	assert.NotContains(t, mailWith(t, d, u.Email, "was changed"), "token=", "the old address gets no link")
	require.Eventually(t, func() bool { return d.SMTP.CountTo(email) == 1 && d.SMTP.CountTo(u.Email) == 2 },
		e2e.EffectsTimeout, e2e.Poll)
	got := api.MustGet(t, "/users/"+u.ID)
	assert.Equal(t, false, jsonOf(t, got)["email_verified"], "a new address starts unverified")
	u.Email = email
	return u
}

// concurrentChanges sends twenty changes with the current version: one is
// answered 200, the others 412, or 429 when more checks of the password
// from one address are in flight than the guess limits let through.
func concurrentChanges(t *testing.T, api *e2e.Client, u e2e.User, run string) {
	t.Helper()
	statuses := make([]int, 20)
	var wg sync.WaitGroup
	e2e.Burst(func() {
		for i := range statuses {
			wg.Go(func() {
				body := fmt.Sprintf(`{"email":"ada%d.%s@example.net","password":%q}`, i, run, u.Password)
				r, err := api.Request(http.MethodPut, "/users/"+u.ID+"/email", "application/json",
					strings.NewReader(body), http.Header{"If-Match": {`"3"`}})
				if assert.NoError(t, err) {
					statuses[i] = r.Status
				}
			})
		}
		wg.Wait()
	})
	counts := map[int]int{}
	for _, s := range statuses {
		counts[s]++
	}
	assert.Equal(t, 1, counts[http.StatusOK], "%v", counts)
	assert.Equal(t, 19, counts[http.StatusPreconditionFailed]+counts[http.StatusTooManyRequests], "%v", counts)
}

// TestE2E_RebuildUsersWhileServing: `onboard projections rebuild users`
// replays the event store into a new table and swaps it in while the
// service registers users; none is lost, and the status shows no lag.
func TestE2E_RebuildUsersWhileServing(t *testing.T) {
	t.Parallel()
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			t.Parallel()
			d := e2e.Deploy(t, e2e.Config{PubSub: transport.KindSQL, Database: backend.URL})
			_, api := d.Serve(t)
			run := e2e.RunID()
			users := newUsers("rebuild", run, 24)
			for i := range users[:12] {
				users[i] = api.MustRegister(t, users[i])
			}
			done := make(chan struct{})
			go func() {
				defer close(done)
				for i := 12; i < len(users); i++ {
					r, err := api.Register(users[i], nil)
					if assert.NoError(t, err) && assert.Equal(t, http.StatusCreated, r.Status, r.String()) {
						users[i].ID = r.ID()
					}
				}
			}()
			out := d.Operator(t, "projections", "rebuild", "users")
			t.Log(out)
			<-done
			assert.Regexp(t, `users rebuilt: \d+ users from \d+ events`, out)
			for _, u := range users {
				got := api.MustGet(t, "/users/"+u.ID)
				assert.Equal(t, u.Email, jsonOf(t, got)["email"])
			}
			status := d.Operator(t, "projections", "status")
			assert.Regexp(t, `(?m)^users\s+\d+\s+\d+\s+0\s+0\.0$`, status)
		})
	}
}
