package ports_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/onboard/onboard/ports"
)

// GET /users?email= is off without ADMIN_TOKEN, and asks for the token
// before it reads anything.
func TestFindUserByEmail_NeedsTheAdminToken(t *testing.T) {
	off, _ := newTestHandler(t, ports.HTTPConfig{})
	on, _ := newTestHandler(t, ports.HTTPConfig{AdminToken: "s3cret-admin-token"})
	for _, tt := range []struct {
		name          string
		handler       http.Handler
		authorization string
		status        int
		code          string
	}{
		{"off", off, "Bearer s3cret-admin-token", http.StatusNotFound, "not-found"},
		{"no header", on, "", http.StatusUnauthorized, "unauthorized"},
		{"another scheme", on, "Basic czNjcmV0", http.StatusUnauthorized, "unauthorized"},
		{"empty token", on, "Bearer ", http.StatusUnauthorized, "unauthorized"},
		{"wrong token", on, "Bearer s3cret-admin-tokem", http.StatusForbidden, "forbidden"},
		{"a prefix of the token", on, "Bearer s3cret", http.StatusForbidden, "forbidden"},
		{"right token, no address", on, "Bearer s3cret-admin-token", http.StatusBadRequest, "invalid-query"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := "/users?email=ada@example.com"
			if tt.code == "invalid-query" {
				path = "/users"
			}
			req := httptest.NewRequest(http.MethodGet, path, nil)
			if tt.authorization != "" {
				req.Header.Set("Authorization", tt.authorization)
			}
			rec := httptest.NewRecorder()
			tt.handler.ServeHTTP(rec, req)
			assert.Equal(t, tt.status, rec.Code, rec.Body.String())
			assert.Contains(t, rec.Body.String(), `"code":"`+tt.code+`"`)
			assert.NotContains(t, rec.Body.String(), "s3cret")
			if tt.status == http.StatusUnauthorized {
				assert.Equal(t, `Bearer realm="onboard"`, rec.Header().Get("WWW-Authenticate"))
				assert.Contains(t, rec.Body.String(), "Bearer <ADMIN_TOKEN>", "the message as written, not HTML-escaped")
			}
		})
	}
}

// PUT /users/{id}/email wants If-Match before it reads the body.
func TestChangeEmail_WithoutIfMatchIs428(t *testing.T) {
	token := strings.Repeat("s3cret", 6)
	handler, hasher := newTestHandler(t, ports.HTTPConfig{AdminToken: token})
	req := httptest.NewRequest(http.MethodPut, "/users/0190f5c4-7b9e-7000-8000-000000000001/email", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusPreconditionRequired, rec.Code)
	assert.Contains(t, rec.Body.String(), `"code":"precondition-required"`)
	assert.Zero(t, hasher.calls.Load())
}

// The verification link opens a page whose button POSTs the token: a GET,
// as a mail scanner sends, verifies nothing and the page runs no script.
func TestVerifyPage(t *testing.T) {
	handler, _ := newTestHandler(t, ports.HTTPConfig{})
	req := httptest.NewRequest(http.MethodGet, `/verify-email?user=u1&token="><script>alert(1)</script>`, nil)
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	assert.Equal(t, http.StatusOK, rec.Code)
	assert.Contains(t, rec.Header().Get("Content-Type"), "text/html")
	assert.Contains(t, rec.Header().Get("Content-Security-Policy"), "default-src 'none'")
	assert.Equal(t, "no-referrer", rec.Header().Get("Referrer-Policy"))
	assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
	body := rec.Body.String()
	assert.Contains(t, body, `<form method="post" action="/verify-email">`)
	assert.NotContains(t, body, "<script>", "the query is escaped")
	assert.Contains(t, body, `value="u1"`)
}
