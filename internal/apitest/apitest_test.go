package apitest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/apitest"
)

const requestID = "0b9cf2e4-54b7-4a53-9e3a-2f4b0f1d2c3e"

// answer is a response to check.
type answer struct {
	status int
	header map[string]string
	body   string
}

func (a answer) exchange(method, target, requestBody string) apitest.Exchange {
	header := http.Header{"X-Request-Id": {requestID}, "X-Content-Type-Options": {"nosniff"},
		"Content-Type": {"application/json; charset=utf-8"}}
	for name, value := range a.header {
		header.Set(name, value)
		if value == "" {
			header.Del(name)
		}
	}
	req := httptest.NewRequest(method, target, strings.NewReader(requestBody))
	req.Header.Set("Authorization", "Bearer a-session-token") // the secured operations' credential
	if requestBody != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	return apitest.Exchange{Request: req, RequestBody: []byte(requestBody), Status: a.status, Header: header,
		Body: []byte(a.body)}
}

func check(t *testing.T, ex apitest.Exchange) error {
	t.Helper()
	contract, err := apitest.Load()
	require.NoError(t, err)
	_, err = contract.Check(context.Background(), ex)
	return err
}

const user = `{"id":"0190f5c4-7b9e-7000-8000-000000000001","name":"Ada Lovelace","email":"ada@example.com",` +
	`"email_verified":false,"locale":"en","registered_at":"2025-01-02T03:04:05Z","version":1}`

// registeredUser is a 201 to POST /users: the user and its session.
const registeredUser = `{"id":"0190f5c4-7b9e-7000-8000-000000000001","name":"Ada Lovelace","email":"ada@example.com",` +
	`"email_verified":false,"locale":"en","registered_at":"2025-01-02T03:04:05Z","version":1,` +
	`"session":{"token":"a-session-token","expires_at":"2025-01-03T03:04:05Z"}}`

// The contract rejects what it does not document: a status, a field, an
// error code, a header value; and a route it does not list, but for the
// router's redirect of a trailing slash to one it does.
func TestContract_RejectsWhatItDoesNotDocument(t *testing.T) {
	userHeaders := map[string]string{"Cache-Control": "no-store", "ETag": `"1"`}
	getUser := "/users/0190f5c4-7b9e-7000-8000-000000000001"
	for _, tt := range []struct {
		name   string
		method string
		target string
		answer answer
		breach string // "" when the exchange keeps the contract
	}{
		{"healthz", http.MethodGet, "/healthz", answer{status: 200, body: `{"status":"ok"}`}, ""},
		{"an undocumented status", http.MethodGet, "/healthz", answer{status: http.StatusTeapot, body: `{"status":"ok"}`},
			"status is not supported"},
		{"an undocumented field", http.MethodGet, "/healthz", answer{status: 200, body: `{"status":"ok","uptime":3}`},
			"doesn't match schema"},
		{"another value", http.MethodGet, "/healthz", answer{status: 200, body: `{"status":"fine"}`}, "doesn't match schema"},
		{"no X-Request-ID", http.MethodGet, "/healthz",
			answer{status: 200, header: map[string]string{"X-Request-ID": ""}, body: `{"status":"ok"}`}, "X-Request-ID"},
		{"no nosniff", http.MethodGet, "/healthz",
			answer{status: 200, header: map[string]string{"X-Content-Type-Options": ""}, body: `{"status":"ok"}`},
			"X-Content-Type-Options"},
		{"a user", http.MethodGet, getUser, answer{status: 200, header: userHeaders, body: user}, ""},
		{"a user with a field more", http.MethodGet, getUser,
			answer{status: 200, header: userHeaders, body: strings.TrimSuffix(user, "}") + `,"password_hash":"x"}`},
			"doesn't match schema"},
		{"a user without its ETag", http.MethodGet, getUser,
			answer{status: 200, header: map[string]string{"Cache-Control": "no-store"}, body: user}, "ETag"},
		{"a weak ETag", http.MethodGet, getUser,
			answer{status: 200, header: map[string]string{"Cache-Control": "no-store", "ETag": `W/"1"`}, body: user}, "ETag"},
		{"a documented error", http.MethodGet, getUser, answer{status: 404, header: userHeaders,
			body: `{"error":{"code":"user-not-found","message":"no user has this id"}}`}, ""},
		{"an error code of another status", http.MethodGet, getUser, answer{status: 404, header: userHeaders,
			body: `{"error":{"code":"email-taken","message":"no user has this id"}}`}, "doesn't match schema"},
		{"an error with a field more", http.MethodGet, getUser, answer{status: 404, header: userHeaders,
			body: `{"error":{"code":"user-not-found","message":"no user has this id","stack":"main.go:1"}}`},
			"doesn't match schema"},
		{"429 without Retry-After", http.MethodPost, "/users/0190f5c4-7b9e-7000-8000-000000000001/email-verification/resend",
			answer{status: 429, header: map[string]string{"Cache-Control": "no-store"},
				body: `{"error":{"code":"too-many-requests","message":"wait"}}`}, "Retry-After"},
		{"an unknown route's 404", http.MethodGet, "/nowhere",
			answer{status: 404, body: `{"error":{"code":"not-found","message":"no such route"}}`}, ""},
		{"an unknown route answered", http.MethodGet, "/nowhere", answer{status: 200, body: `{}`},
			"no operation of the contract takes it"},
		{"the router's redirect of a trailing slash", http.MethodGet, getUser + "/",
			answer{status: 301, header: map[string]string{"Location": getUser}}, ""},
		{"a trailing slash redirected elsewhere", http.MethodGet, getUser + "/",
			answer{status: 301, header: map[string]string{"Location": "/nowhere"}}, "no operation of the contract takes it"},
		{"a trailing slash redirected to no operation", http.MethodGet, "/nowhere/",
			answer{status: 301, header: map[string]string{"Location": "/nowhere"}}, "no operation of the contract takes it"},
		{"a trailing slash of a POST redirected with 301", http.MethodPost, "/users/",
			answer{status: 301, header: map[string]string{"Location": "/users"}}, "no operation of the contract takes it"},
		{"an undocumented method's 405", http.MethodDelete, "/healthz",
			answer{status: 405, body: `{"error":{"code":"method-not-allowed","message":"method not allowed on this route"}}`}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := check(t, tt.answer.exchange(tt.method, tt.target, ""))
			if tt.breach == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.breach)
		})
	}
}

// A request is checked when its answer is not 4xx: a 2xx, 3xx or 5xx says
// the API took it, so it must be one the contract describes.
func TestContract_ChecksTheRequestsTheAPITook(t *testing.T) {
	created := answer{status: 201, header: map[string]string{"Cache-Control": "no-store", "ETag": `"1"`,
		"Location": "/users/0190f5c4-7b9e-7000-8000-000000000001"}, body: registeredUser}
	valid := `{"name":"Ada Lovelace","email":"ada@example.com","password":"correct horse battery"}`
	assert.NoError(t, check(t, created.exchange(http.MethodPost, "/users", valid)))

	unknownKey := `{"name":"Ada Lovelace","email":"ada@example.com","password":"correct horse battery","admin":true}`
	err := check(t, created.exchange(http.MethodPost, "/users", unknownKey))
	require.Error(t, err, "a 201 to a body the contract refuses")
	assert.Contains(t, err.Error(), "request")

	refused := answer{status: 400, header: map[string]string{"Cache-Control": "no-store"},
		body: `{"error":{"code":"malformed-json","message":"the body is not a valid JSON object of the expected shape"}}`}
	assert.NoError(t, check(t, refused.exchange(http.MethodPost, "/users", unknownKey)), "a 4xx to it keeps the contract")
}

// recordingT is a test that keeps its errors.
type recordingT struct {
	testing.TB
	mu     sync.Mutex
	errors []string
}

func (r *recordingT) Helper() {}

func (r *recordingT) Errorf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// The Handler and the Transport fail their test on a breach, pass the
// answer on unchanged, and record the operations reached.
func TestValidator_FailsItsTestOnABreach(t *testing.T) {
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Request-ID", requestID)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Query().Has("teapot") {
			w.WriteHeader(http.StatusTeapot)
		}
		_, _ = w.Write([]byte(`{"status":"ok"}`))
	})
	rt := &recordingT{TB: t}
	v := apitest.New(rt)
	handler := v.Handler(api)

	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.JSONEq(t, `{"status":"ok"}`, rec.Body.String())
	assert.Equal(t, requestID, rec.Header().Get("X-Request-ID"))
	assert.Empty(t, rt.errors)

	rec = httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz?teapot", nil))
	assert.Equal(t, http.StatusTeapot, rec.Code, "the answer is passed on")
	require.Len(t, rt.errors, 1)
	assert.Contains(t, rt.errors[0], "GET /healthz?teapot → 418")

	server := httptest.NewServer(api)
	defer server.Close()
	client := &http.Client{Transport: v.Transport(nil)}
	resp, err := client.Get(server.URL + "/readyz?teapot")
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Len(t, rt.errors, 2)
	assert.Contains(t, rt.errors[1], "GET /readyz?teapot → 418")

	assert.NotContains(t, v.Unreached(), "GET /healthz")
	assert.NotContains(t, v.Unreached(), "GET /readyz")
	assert.Contains(t, v.Unreached(), "HEAD /healthz")
}
