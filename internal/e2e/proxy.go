//go:build chaos

package e2e

import (
	"net/url"
	"testing"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/rs/zerolog"
	"github.com/stretchr/testify/require"
)

// Proxy is a toxiproxy proxy running in the test process, to cut the
// service off a dependency. Only the service goes through it; the test's
// own checks connect directly. Built for the fault suite alone (the chaos
// build tag).
type Proxy struct {
	proxy *toxiproxy.Proxy
	// Addr is the loopback host:port the proxy listens on.
	Addr string
}

// StartProxy proxies a loopback port to upstream (host:port) until the test ends.
func StartProxy(t testing.TB, name, upstream string) *Proxy {
	t.Helper()
	server := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	proxy := toxiproxy.NewProxy(server, name, "127.0.0.1:0", upstream)
	require.NoError(t, proxy.Start(), "start the %s proxy", name)
	t.Cleanup(proxy.Stop)
	// Start has bound the port: re-enabling the proxy listens on it again.
	return &Proxy{proxy: proxy, Addr: proxy.Listen}
}

// ProxyURL starts a proxy to the host of rawURL (with the scheme's
// defaultPort when it names none) and returns it with rawURL through it.
func ProxyURL(t testing.TB, name, rawURL, defaultPort string) (*Proxy, string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	require.NoError(t, err)
	upstream := u.Host
	if u.Port() == "" {
		upstream = u.Hostname() + ":" + defaultPort
	}
	p := StartProxy(t, name, upstream)
	u.Host = p.Addr
	return p, u.String()
}

// Cut disables the proxy: its connections are closed and new ones refused.
func (p *Proxy) Cut() { p.proxy.Stop() }

// Restore enables the proxy again on the same port.
func (p *Proxy) Restore(t testing.TB) {
	t.Helper()
	require.NoError(t, p.proxy.Start(), "re-enable the %s proxy on %s", p.proxy.Name, p.Addr)
}
