package ports_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/internal/apitest"
	"github.com/onboard/onboard/ports"
)

// overloadedHasher never gets a turn to hash; it counts the attempts.
type overloadedHasher struct{ calls atomic.Int64 }

func (h *overloadedHasher) Hash(context.Context, string) ([]byte, error) {
	h.calls.Add(1)
	return nil, command.ErrOverloaded
}

func (h *overloadedHasher) Matches(context.Context, []byte, string) (bool, error) {
	h.calls.Add(1)
	return false, command.ErrOverloaded
}

// newTestHandler serves the API over a registration handler whose hasher
// is always overloaded: a 503 overloaded tells a registration got past
// every check before hashing. Every exchange is checked against the
// contract.
func newTestHandler(t *testing.T, cfg ports.HTTPConfig) (http.Handler, *overloadedHasher) {
	t.Helper()
	hasher := &overloadedHasher{}
	application := app.Application{Commands: app.Commands{
		RegisterUser: command.NewRegisterUserHandler(nil, hasher, nil, nil, nil),
	}}
	cfg.Ready = func(context.Context) error { return nil }
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.IdempotencySecret = bytes.Repeat([]byte{7}, 32)
	handler, err := ports.NewHandler(application, cfg)
	require.NoError(t, err)
	return apitest.New(t).Handler(handler), hasher
}

const adaBody = `{"name":"Ada Lovelace","email":"ada@example.com","password":"correct horse battery"}`

// register sends POST /users from the peer remoteAddr (host:port) with
// header.
func register(handler http.Handler, remoteAddr string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/users", strings.NewReader(adaBody))
	req.RemoteAddr = remoteAddr
	req.Header.Set("Content-Type", "application/json")
	for name, value := range header {
		req.Header.Set(name, value)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec
}

func TestRegisterUser_OverloadedAnswers503RetryAfter(t *testing.T) {
	handler, _ := newTestHandler(t, ports.HTTPConfig{})
	rec := register(handler, "192.0.2.1:1234", nil)

	require.Equal(t, http.StatusServiceUnavailable, rec.Code, rec.Body.String())
	assert.Equal(t, "1", rec.Header().Get("Retry-After"))
	assert.JSONEq(t, `{"error":{"code":"overloaded","message":"too many requests at once, try again shortly"}}`, rec.Body.String())
}

func TestRegisterUser_RateLimitedPerClientBeforeHashing(t *testing.T) {
	handler, hasher := newTestHandler(t, ports.HTTPConfig{
		PasswordLimit: ports.RateLimit{Count: 2, Per: time.Minute, Burst: 2},
	})
	for range 2 {
		rec := register(handler, "192.0.2.1:1234", nil)
		require.Equal(t, http.StatusServiceUnavailable, rec.Code, "within the burst: %s", rec.Body.String())
	}
	hashed := hasher.calls.Load()

	rec := register(handler, "192.0.2.1:5678", nil)
	require.Equal(t, http.StatusTooManyRequests, rec.Code, rec.Body.String())
	assert.JSONEq(t, `{"error":{"code":"too-many-requests","message":"too many password requests from this address, try again later"}}`,
		rec.Body.String())
	// Two per minute: the next token comes within 30 s.
	retryAfter := rec.Header().Get("Retry-After")
	assert.Contains(t, []string{"29", "30"}, retryAfter)
	assert.Equal(t, hashed, hasher.calls.Load(), "a refused registration is not hashed")

	rec = register(handler, "192.0.2.2:1234", nil)
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "another client has its own allowance")
}

func TestRegisterUser_ForwardedForCountsOnlyFromTrustedProxies(t *testing.T) {
	limit := ports.RateLimit{Count: 1, Per: time.Hour, Burst: 1}
	const passed, refused = http.StatusServiceUnavailable, http.StatusTooManyRequests
	xff := func(v string) map[string]string { return map[string]string{"X-Forwarded-For": v} }

	t.Run("no trusted proxy: the header is ignored", func(t *testing.T) {
		handler, _ := newTestHandler(t, ports.HTTPConfig{PasswordLimit: limit})
		assert.Equal(t, passed, register(handler, "192.0.2.1:1", xff("198.51.100.1")).Code)
		assert.Equal(t, refused, register(handler, "192.0.2.1:1", xff("198.51.100.2")).Code, "the peer is the client")
		assert.Equal(t, refused, register(handler, "192.0.2.1:1", map[string]string{"X-Real-IP": "198.51.100.3"}).Code)
	})

	t.Run("behind a trusted proxy: the right-most untrusted address", func(t *testing.T) {
		handler, _ := newTestHandler(t, ports.HTTPConfig{PasswordLimit: limit,
			TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
		assert.Equal(t, passed, register(handler, "10.0.0.1:1", xff("198.51.100.1")).Code)
		assert.Equal(t, refused, register(handler, "10.0.0.2:1", xff("198.51.100.1")).Code, "the same client, via another proxy")
		assert.Equal(t, passed, register(handler, "10.0.0.1:1", xff("198.51.100.2")).Code, "another client")
		// A client cannot pick its address by prepending to the header.
		assert.Equal(t, refused, register(handler, "10.0.0.1:1", xff("203.0.113.9, 198.51.100.1")).Code)
		// Proxies in a chain are skipped.
		assert.Equal(t, refused, register(handler, "10.0.0.1:1", xff("198.51.100.1, 10.9.9.9")).Code)
		// X-Real-IP is not read.
		assert.Equal(t, passed, register(handler, "10.0.0.3:1", map[string]string{"X-Real-IP": "198.51.100.1"}).Code,
			"without X-Forwarded-For the proxy is the client")
		// An untrusted peer's header is ignored.
		assert.Equal(t, passed, register(handler, "192.0.2.7:1", xff("198.51.100.2")).Code)
		assert.Equal(t, refused, register(handler, "192.0.2.7:1", xff("198.51.100.3")).Code)
	})

	t.Run("IPv6 clients by their /64", func(t *testing.T) {
		handler, _ := newTestHandler(t, ports.HTTPConfig{PasswordLimit: limit})
		assert.Equal(t, passed, register(handler, "[2001:db8:1:2::1]:1", nil).Code)
		assert.Equal(t, refused, register(handler, "[2001:db8:1:2:ffff::9]:1", nil).Code, "the same /64")
		assert.Equal(t, passed, register(handler, "[2001:db8:1:3::1]:1", nil).Code, "another /64")
	})
}

func TestNewHandler_ValidatesItsConfig(t *testing.T) {
	_, err := ports.NewHandler(app.Application{}, ports.HTTPConfig{
		PasswordLimit: ports.RateLimit{Count: 1},
	})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "readiness check")
	assert.Contains(t, err.Error(), "idempotency secret")
	assert.Contains(t, err.Error(), "rate")
}
