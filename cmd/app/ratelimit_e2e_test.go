package main

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/internal/e2e"
)

// TestE2E_RegistrationRateLimit: the binary behind a trusted proxy on
// 127.0.0.1 limits registrations per client of X-Forwarded-For, answering
// 429 with Retry-After; another client still registers.
func TestE2E_RegistrationRateLimit(t *testing.T) {
	t.Parallel()
	proc, api := e2e.Deploy(t, e2e.Config{Vars: map[string]string{
		"RATE_LIMIT_PASSWORDS": "2/h,burst=2",
		"TRUSTED_PROXIES":      "127.0.0.1",
	}}).Serve(t)
	from := func(client string, i int) e2e.Response {
		t.Helper()
		u := e2e.User{Name: "Limited User", Email: fmt.Sprintf("limited.%d@example.com", i), Password: "pw-limited-user"}
		r, err := api.Register(u, http.Header{"X-Forwarded-For": {client}})
		require.NoError(t, err)
		return r
	}

	for i := range 2 {
		r := from("198.51.100.1", i)
		require.Equal(t, http.StatusCreated, r.Status, r.String())
	}
	r := from("198.51.100.1", 2)
	require.Equal(t, http.StatusTooManyRequests, r.Status, r.String())
	code, _ := r.Error()
	assert.Equal(t, "too-many-requests", code)
	retryAfter, err := strconv.Atoi(r.Header.Get("Retry-After"))
	require.NoError(t, err, "Retry-After in seconds: %q", r.Header.Get("Retry-After"))
	assert.InDelta(t, 1800, retryAfter, 2, "two per hour: the next in 30 min")

	r = from("198.51.100.2", 3)
	assert.Equal(t, http.StatusCreated, r.Status, "another client registers: %s", r.String())
	proc.Stop(t)
}
