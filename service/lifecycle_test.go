package service

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// testAdminToken opens GET /users?email= in the tests.
const testAdminToken = "admin-token-of-the-tests-0123456789abcdef"

type userBody struct {
	ID            string `json:"id"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Locale        string `json:"locale"`
	Version       int    `json:"version"`
}

// reply is a response, its body read.
type reply struct {
	StatusCode int
	Header     http.Header
}

// call sends a request, its body JSON unless header says otherwise (an
// empty value removes a header), and returns the response and its body.
func (s *runningService) call(method, path, body string, header map[string]string) (reply, []byte) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://"+s.svc.Addr()+path, strings.NewReader(body))
	require.NoError(s.t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for name, value := range header {
		req.Header.Set(name, value)
		if value == "" {
			req.Header.Del(name)
		}
	}
	// bcrypt is slow under -race, and runs twice for a repeat.
	resp, err := (&http.Client{Timeout: serviceWait, Transport: s.client.Transport}).Do(req)
	require.NoError(s.t, err)
	defer func() { _ = resp.Body.Close() }()
	var out bytes.Buffer
	_, err = out.ReadFrom(resp.Body)
	require.NoError(s.t, err)
	return reply{StatusCode: resp.StatusCode, Header: resp.Header}, out.Bytes()
}

// sessionHeader is the Authorization header of the session a 201 to
// POST /users opened.
func sessionHeader(t *testing.T, body []byte) map[string]string {
	t.Helper()
	var u struct{ Session struct{ Token string } }
	require.NoError(t, json.Unmarshal(body, &u), "%s", body)
	require.NotEmpty(t, u.Session.Token, "%s", body)
	return map[string]string{"Authorization": "Bearer " + u.Session.Token}
}

func decodeUser(t *testing.T, body []byte) userBody {
	t.Helper()
	var u userBody
	require.NoError(t, json.Unmarshal(body, &u), "%s", body)
	return u
}

// linkOf waits for the email to address whose subject is subject and
// returns its verification link.
func (s *runningService) linkOf(address, subject string) *url.URL {
	s.t.Helper()
	body := s.waitMail(address, subject)
	i := strings.Index(body, ownPage(DefaultHTTPAddr, "/verify-email")+"?")
	require.GreaterOrEqual(s.t, i, 0, "a link in %q", body)
	link, err := url.Parse(strings.Fields(body[i:])[0])
	require.NoError(s.t, err)
	return link
}

// waitMail waits for the email to address whose subject is subject and
// returns its body.
func (s *runningService) waitMail(address, subject string) string {
	s.t.Helper()
	var body string
	require.Eventually(s.t, func() bool {
		for _, m := range s.mailer.To(address) {
			if m.Subject == subject {
				body = m.Body
				return true
			}
		}
		return false
	}, serviceWait, 10*time.Millisecond, "an email %q to %s", subject, address)
	return body
}

// TestService_UserLifecycle: register, follow the welcome email's link,
// change the address against the version read; on every database.
func TestService_UserLifecycle(t *testing.T) {
	t.Parallel()
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			dbURL := backend.URL(t)
			testUserLifecycle(t, startServiceOn(t, testenv.OpenDB(t, dbURL), dbURL))
		})
	}
}

func testUserLifecycle(t *testing.T, s *runningService) {
	status, _, body := s.post(jsonBody(okName, `"Ada@Example.com"`, okPassword), "")
	require.Equal(t, http.StatusCreated, status, "%s", body)
	ada := decodeUser(t, body)
	assert.Equal(t, userBody{ID: ada.ID, Email: "Ada@Example.com", Locale: "en", Version: 1}, ada)
	auth := sessionHeader(t, body)

	link := s.linkOf("ada@example.com", "Welcome to onboard")
	assert.Equal(t, ada.ID, link.Query().Get("user"))
	token := link.Query().Get("token")
	verifyPath := "/users/" + ada.ID + "/email-verification"
	resp, body := s.call(http.MethodPost, verifyPath, `{"token":"`+token[:len(token)-2]+`xx"}`, nil)
	assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "%s", body)
	assert.Equal(t, "invalid-token", errorCode(t, body))
	for range 2 { // the same link twice
		resp, body = s.call(http.MethodPost, verifyPath, `{"token":"`+token+`"}`, nil)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
		assert.Equal(t, userBody{ID: ada.ID, Email: "Ada@Example.com", EmailVerified: true, Locale: "en", Version: 2},
			decodeUser(t, body))
	}
	resp, _ = s.call(http.MethodGet, "/users/"+ada.ID, "", nil)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "a user is read with its session alone")
	resp, body = s.call(http.MethodGet, "/users/"+ada.ID, "", auth)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.True(t, decodeUser(t, body).EmailVerified, "read your write")
	assert.Equal(t, `"2"`, resp.Header.Get("ETag"))
	resp, body = s.call(http.MethodPost, verifyPath+"/resend", "", auth)
	assert.Equal(t, http.StatusConflict, resp.StatusCode, "%s", body)

	change := func(ifMatch, email string) (reply, []byte) {
		header := maps.Clone(auth)
		if ifMatch != "" {
			header["If-Match"] = ifMatch
		}
		return s.call(http.MethodPut, "/users/"+ada.ID+"/email",
			`{"email":"`+email+`","password":`+okPassword+`}`, header)
	}
	resp, body = change("", "lovelace@example.org")
	assert.Equal(t, http.StatusPreconditionRequired, resp.StatusCode, "%s", body)
	resp, body = change(`"1"`, "lovelace@example.org")
	assert.Equal(t, http.StatusPreconditionFailed, resp.StatusCode, "%s", body)
	assert.Equal(t, "version-mismatch", errorCode(t, body))
	resp, body = s.call(http.MethodPut, "/users/"+ada.ID+"/email",
		`{"email":"lovelace@example.org","password":"wrong password 123"}`,
		map[string]string{"If-Match": `"2"`, "Authorization": auth["Authorization"]})
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "%s", body)

	resp, body = change(`2`, "Lovelace@Example.org") // the version bare, as a client holding "version": 2 sends it
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, userBody{ID: ada.ID, Email: "Lovelace@Example.org", Locale: "en", Version: 3}, decodeUser(t, body))
	assert.Equal(t, `"3"`, resp.Header.Get("ETag"))
	newLink := s.linkOf("lovelace@example.org", "Confirm your email address")
	assert.NotContains(t, s.waitMail("ada@example.com", "Your email address was changed"), "token")
	resp, body = s.call(http.MethodPost, verifyPath, `{"token":"`+token+`"}`, nil)
	assert.Equal(t, "invalid-token", errorCode(t, body), "the old address's link is void: %d", resp.StatusCode)
	resp, body = s.call(http.MethodPost, verifyPath, `{"token":"`+newLink.Query().Get("token")+`"}`, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)

	resp, body = s.call(http.MethodGet, "/users?email=LOVELACE@example.org", "",
		map[string]string{"Authorization": "Bearer " + testAdminToken})
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.Equal(t, ada.ID, decodeUser(t, body).ID)
	resp, _ = s.call(http.MethodGet, "/users?email=ada@example.com", "",
		map[string]string{"Authorization": "Bearer " + testAdminToken})
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "the old address is nobody's")
	// Each email once: welcome, verification and notice.
	assert.Eventually(t, func() bool { return s.mailer.Count() == 3 }, serviceWait, 10*time.Millisecond)
	assert.Never(t, func() bool { return s.mailer.Count() > 3 }, 200*time.Millisecond, 10*time.Millisecond)
}

// TestService_AnAddressChangedBackVoidsItsOldLinks: after A -> B -> A over
// the API, the welcome link of A and the link sent to B are refused; the
// link sent on the return to A verifies. A token signed with the
// service's own key but expiring in 10 years is refused too.
func TestService_AnAddressChangedBackVoidsItsOldLinks(t *testing.T) {
	t.Parallel()
	s := startServiceOnSQLite(t)
	status, _, body := s.post(jsonBody(okName, `"ada@example.com"`, okPassword), "")
	require.Equal(t, http.StatusCreated, status, "%s", body)
	id, auth := decodeUser(t, body).ID, sessionHeader(t, body)
	welcome := s.linkOf("ada@example.com", "Welcome to onboard").Query().Get("token")
	for version, email := range []string{"bob@example.org", "ada@example.com"} {
		resp, body := s.call(http.MethodPut, "/users/"+id+"/email", `{"email":"`+email+`","password":`+okPassword+`}`,
			map[string]string{"If-Match": fmt.Sprintf(`"%d"`, version+1), "Authorization": auth["Authorization"]})
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	}
	bLink := s.linkOf("bob@example.org", "Confirm your email address").Query().Get("token")
	var returned string
	require.Eventually(t, func() bool {
		links := 0
		for _, m := range s.mailer.To("ada@example.com") {
			if m.Subject == "Confirm your email address" {
				returned = m.Body
				links++
			}
		}
		return links == 1
	}, serviceWait, 10*time.Millisecond, "the return to A sends A a link")
	i := strings.Index(returned, ownPage(DefaultHTTPAddr, "/verify-email")+"?")
	require.GreaterOrEqual(t, i, 0, returned)
	link, err := url.Parse(strings.Fields(returned[i:])[0])
	require.NoError(t, err)
	returnLink := link.Query().Get("token")
	assert.NotEqual(t, welcome, returnLink, "another link for A's second spell")

	key, err := s.svc.keys.Secret(testenv.Context(t), secrets.VerificationKeySecret)
	require.NoError(t, err)
	tenYears := domain.VerificationKey(key).Token(domain.TokenSubject{UserID: id, EmailKey: "ada@example.com",
		EmailNumber: 3}, time.Now().AddDate(10, 0, 0))

	verifyPath := "/users/" + id + "/email-verification"
	for name, token := range map[string]string{"A's welcome link": welcome, "B's link": bLink,
		"a 10-year token signed with the key": tenYears} {
		resp, body := s.call(http.MethodPost, verifyPath, `{"token":"`+token+`"}`, nil)
		assert.Equal(t, http.StatusUnprocessableEntity, resp.StatusCode, "%s: %s", name, body)
		assert.Equal(t, "invalid-token", errorCode(t, body), name)
	}
	resp, body := s.call(http.MethodPost, verifyPath, `{"token":"`+returnLink+`"}`, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	assert.True(t, decodeUser(t, body).EmailVerified)
}

// TestService_ConcurrentEmailChanges: twenty changes sent with one
// version; one is answered 200, the others 412.
func TestService_ConcurrentEmailChanges(t *testing.T) {
	t.Parallel()
	for _, backend := range testenv.Backends() {
		t.Run(backend.Name, func(t *testing.T) {
			dbURL := backend.URL(t)
			s := startServiceOn(t, testenv.OpenDB(t, dbURL), dbURL)
			status, _, body := s.post(jsonBody(okName, `"ada@example.com"`, okPassword), "")
			require.Equal(t, http.StatusCreated, status, "%s", body)
			id, auth := decodeUser(t, body).ID, sessionHeader(t, body)
			statuses := make([]int, 20)
			var wg sync.WaitGroup
			for i := range statuses {
				wg.Go(func() {
					resp, _ := s.call(http.MethodPut, "/users/"+id+"/email",
						fmt.Sprintf(`{"email":"ada%d@example.com","password":%s}`, i, okPassword),
						map[string]string{"If-Match": `"1"`, "Authorization": auth["Authorization"]})
					statuses[i] = resp.StatusCode
				})
			}
			wg.Wait()
			counts := map[int]int{}
			for _, status := range statuses {
				counts[status]++
			}
			// The losers are 412, or 429 past the password checks one
			// address may have in flight.
			assert.Equal(t, 1, counts[http.StatusOK], "%v", counts)
			assert.Equal(t, 19, counts[http.StatusPreconditionFailed]+counts[http.StatusTooManyRequests], "%v", counts)
		})
	}
}
