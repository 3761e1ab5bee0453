package service

import (
	"net/netip"
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
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Equal(t, 64, cfg.HashQueueMax)
	assert.Equal(t, ports.RateLimit{Count: 30, Per: time.Minute, Burst: 10}, cfg.PasswordLimit)
	assert.Empty(t, cfg.TrustedProxies, "no proxy is trusted by default")
}

// Every bad value is reported at once, each naming its variable.
func TestLoadConfig_HTTPVariablesRejectBadValues(t *testing.T) {
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
