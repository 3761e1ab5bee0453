package ports_test

import (
	"net/netip"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/ports"
)

func TestParseRateLimit(t *testing.T) {
	tests := []struct {
		in   string
		want ports.RateLimit
	}{
		{"off", ports.RateLimit{}},
		{"30/m,burst=10", ports.RateLimit{Count: 30, Per: time.Minute, Burst: 10}},
		{"5/s", ports.RateLimit{Count: 5, Per: time.Second, Burst: 5}},
		{"1000/h", ports.RateLimit{Count: 1000, Per: time.Hour, Burst: 1000}},
		{" 2/m , burst=1 ", ports.RateLimit{Count: 2, Per: time.Minute, Burst: 1}},
	}
	for _, tt := range tests {
		got, err := ports.ParseRateLimit(tt.in)
		require.NoError(t, err, "%q", tt.in)
		assert.Equal(t, tt.want, got, "%q", tt.in)
		assert.NoError(t, got.Validate())
	}
	def, err := ports.ParseRateLimit(ports.DefaultPasswordLimit)
	require.NoError(t, err)
	assert.Equal(t, ports.RateLimit{Count: 30, Per: time.Minute, Burst: 10}, def)

	for _, bad := range []string{"", "30", "30/d", "0/m", "-1/m", "x/m", "30/m,burst=0", "30/m,burst=", "30/m,10",
		"30/m,burst=10,burst=11", "1e3/s", "30 per minute", "2000000/s"} {
		_, err := ports.ParseRateLimit(bad)
		assert.Error(t, err, "%q", bad)
	}
	assert.Error(t, ports.RateLimit{Count: 1, Per: time.Minute}.Validate(), "a limit needs a burst")
	assert.Error(t, ports.RateLimit{Count: 1, Burst: 1}.Validate(), "a limit needs a period")
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ports.ParseTrustedProxies("")
	require.NoError(t, err)
	assert.Empty(t, got, "none by default")

	got, err = ports.ParseTrustedProxies(" 10.0.0.0/8, 127.0.0.1 ,2001:db8::/32,::1")
	require.NoError(t, err)
	assert.Equal(t, []netip.Prefix{
		netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32"),
		netip.MustParsePrefix("2001:db8::/32"), netip.MustParsePrefix("::1/128"),
	}, got)

	for _, bad := range []string{"10.0.0.0/33", "proxy.local", "10.0.0.1,", "10.0.0.1:80", "10.0.0.1/8"} {
		_, err := ports.ParseTrustedProxies(bad)
		assert.Error(t, err, "%q", bad)
	}
}
