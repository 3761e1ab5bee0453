package service

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/ports"
)

// env returns a getenv reading vars.
func env(vars map[string]string) func(string) string {
	return func(name string) string { return vars[name] }
}

func TestLoadConfig_HTTPDefaults(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, 64, cfg.HashQueueMax)
	assert.Equal(t, ports.RateLimit{Count: 30, Per: time.Minute, Burst: 10}, cfg.PasswordLimit)
	assert.Empty(t, cfg.TrustedProxies, "no proxy is trusted by default")
}

// Every bad value is reported at once, each naming its variable.
func TestLoadConfig_HTTPVariablesRejectBadValues(t *testing.T) {
	t.Parallel()
	_, err := LoadConfig(env(map[string]string{
		"HASH_QUEUE_MAX":       "0",
		"RATE_LIMIT_PASSWORDS": "30 a minute",
		"TRUSTED_PROXIES":      "10.0.0.0/8,proxy.internal",
	}))
	require.Error(t, err)
	for _, name := range []string{"HASH_QUEUE_MAX", "RATE_LIMIT_PASSWORDS", "TRUSTED_PROXIES"} {
		assert.Contains(t, err.Error(), name)
	}

	cfg, err := LoadConfig(env(map[string]string{
		"HASH_QUEUE_MAX":       "5",
		"RATE_LIMIT_PASSWORDS": "off",
		"TRUSTED_PROXIES":      "127.0.0.1, 10.0.0.0/8",
	}))
	require.NoError(t, err)
	assert.Equal(t, 5, cfg.HashQueueMax)
	assert.True(t, cfg.PasswordLimit.Off())
	assert.Equal(t, []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32"), netip.MustParsePrefix("10.0.0.0/8")}, cfg.TrustedProxies)
}

// The links' pages default to this service's own, on HTTP_ADDR's port: a
// service moved to :8081 mails links that open it.
func TestLoadConfig_LinksFollowHTTPAddr(t *testing.T) {
	t.Parallel()
	for addr, want := range map[string]string{
		"":               "http://localhost:8080",
		":8081":          "http://localhost:8081",
		"0.0.0.0:9000":   "http://localhost:9000",
		"[::]:9001":      "http://localhost:9001",
		"127.0.0.1:9002": "http://127.0.0.1:9002",
		"[::1]:9003":     "http://[::1]:9003",
	} {
		cfg, err := LoadConfig(env(map[string]string{"HTTP_ADDR": addr}))
		require.NoError(t, err, addr)
		assert.Equal(t, want+"/verify-email", cfg.VerifyURL, addr)
		assert.Equal(t, want+"/reset-password", cfg.ResetURL, addr)
	}
	cfg, err := LoadConfig(env(map[string]string{"HTTP_ADDR": ":8081", "VERIFY_URL": "https://example.com/verify"}))
	require.NoError(t, err)
	assert.Equal(t, "https://example.com/verify", cfg.VerifyURL, "a VERIFY_URL set wins")
}

// A parser's error names its variable once; an invalid METRICS_ADDR is
// one error, not a second one from PPROF.
func TestLoadConfig_OneErrorPerBadVariable(t *testing.T) {
	t.Parallel()
	_, err := LoadConfig(env(map[string]string{"PUBSUB_NAMESPACE": "Not Valid"}))
	require.Error(t, err)
	assert.Equal(t, 1, strings.Count(err.Error(), "PUBSUB_NAMESPACE:"), err.Error())
	_, err = LoadConfig(env(map[string]string{"METRICS_ADDR": "nonsense", "PPROF": "on"}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "METRICS_ADDR: want host:port")
	assert.NotContains(t, err.Error(), "PPROF", "PPROF=on has its METRICS_ADDR")
}
