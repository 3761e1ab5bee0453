package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
)

// TestE2E_ResponseHeaders: the headers every answer of the binary carries.
func TestE2E_ResponseHeaders(t *testing.T) {
	t.Parallel()
	proc, api := e2e.Deploy(t, e2e.Config{}).Serve(t)
	created, err := api.Register(e2e.User{Name: "Ada Lovelace", Email: "ada.headers@example.com", Password: "correct horse battery"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, created.Status, created.String())
	id := created.ID()

	// Answers with a user's name, email or points are never stored by a cache.
	assert.Equal(t, "no-store", created.Header.Get("Cache-Control"), "the 201")
	for _, path := range []string{"/users/" + id, "/users/" + id + "/points"} {
		r := api.MustGet(t, path)
		require.Equal(t, http.StatusOK, r.Status, r.String())
		assert.Equal(t, "no-store", r.Header.Get("Cache-Control"), "GET %s", path)
	}
	proc.Stop(t)
}

// TestE2E_NosniffAndHEAD: X-Content-Type-Options: nosniff on every answer,
// errors and the router's own answers included; HEAD answered wherever GET
// is, with GET's status and headers and no body.
func TestE2E_NosniffAndHEAD(t *testing.T) {
	t.Parallel()
	proc, api := e2e.Deploy(t, e2e.Config{}).Serve(t)
	created, err := api.Register(e2e.User{Name: "Ada Lovelace", Email: "ada.head@example.com", Password: "correct horse battery"}, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, created.Status, created.String())
	id := created.ID()
	assert.Equal(t, "nosniff", created.Header.Get("X-Content-Type-Options"), "the 201")
	// do returns the status, headers and body of one exchange.
	do := func(method, path, contentType, body string) (int, http.Header, []byte) {
		t.Helper()
		r, err := api.Request(method, path, contentType, strings.NewReader(body), nil)
		require.NoError(t, err)
		return r.Status, r.Header, r.Body
	}

	for _, tc := range []struct {
		method, path, contentType, body string
		status                          int
	}{
		{http.MethodPost, "/users", "application/json", "{", http.StatusBadRequest},
		{http.MethodPost, "/users", "text/plain", "hi", http.StatusUnsupportedMediaType},
		{http.MethodGet, "/nowhere", "", "", http.StatusNotFound},
		{http.MethodDelete, "/users", "", "", http.StatusMethodNotAllowed},
		{http.MethodPut, "/users/" + id, "", "", http.StatusMethodNotAllowed},
		{http.MethodGet, "/users/" + id + "/", "", "", http.StatusMovedPermanently}, // the router's own redirect
	} {
		status, header, body := do(tc.method, tc.path, tc.contentType, tc.body)
		assert.Equal(t, tc.status, status, "%s %s: %s", tc.method, tc.path, body)
		assert.Equal(t, "nosniff", header.Get("X-Content-Type-Options"), "%s %s -> %d", tc.method, tc.path, status)
	}

	// The points arrive after the 201: GET and HEAD then see the same ledger.
	require.Eventually(t, func() bool { return api.HasSignupPoints(id) }, e2e.EffectsTimeout, e2e.Poll, "signup points")
	for _, path := range []string{"/users/" + id, "/users/" + id + "/points", "/users/not-a-uuid",
		"/users/0190f5c4-7b9e-7000-8000-000000000001", "/healthz", "/readyz", "/nowhere"} {
		getStatus, get, getBody := do(http.MethodGet, path, "", "")
		headStatus, head, headBody := do(http.MethodHead, path, "", "")
		assert.Equal(t, getStatus, headStatus, "HEAD %s", path)
		assert.NotEqual(t, http.StatusMethodNotAllowed, headStatus, "HEAD %s", path)
		assert.Empty(t, headBody, "HEAD %s has no body", path)
		assert.NotEmpty(t, getBody, "GET %s", path)
		for _, name := range []string{"Content-Type", "Content-Length", "Cache-Control", "X-Content-Type-Options"} {
			assert.Equal(t, get.Get(name), head.Get(name), "HEAD %s: %s", path, name)
		}
		assert.Equal(t, "nosniff", head.Get("X-Content-Type-Options"), "HEAD %s", path)
	}
	proc.Stop(t)
}
