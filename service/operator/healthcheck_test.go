package operator

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/service"
)

// `onboard healthcheck` passes while the service runs and fails once it
// stopped. It reads HTTP_ADDR alone: the database of its configuration,
// which it could not reach, is never opened.
func TestHealthcheck_RunningService(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc, err := service.New(ctx, service.Config{
		PubSub: "gochannel", DatabaseURL: testenv.SQLiteDatabase(t), HTTPAddr: "127.0.0.1:0",
		BcryptCost: bcrypt.MinCost, MailFrom: service.DefaultMailFrom,
	}, nil, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	ran := make(chan error, 1)
	go func() { ran <- svc.Run(ctx) }()

	cfg := service.Config{HTTPAddr: svc.Addr(), DatabaseURL: "postgres://postgres@127.0.0.1:1/never-opened"}
	var out strings.Builder
	require.Eventually(t, func() bool {
		out.Reset()
		return Run(ctx, cfg, []string{"healthcheck"}, &out, io.Discard) == nil
	}, 20*time.Second, 50*time.Millisecond, "the service serves /healthz")
	assert.Equal(t, "GET http://"+svc.Addr()+"/healthz: 200 OK\n", out.String())

	cancel()
	select {
	case err := <-ran:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the service did not stop")
	}
	err = Run(context.Background(), cfg, []string{"healthcheck"}, io.Discard, io.Discard)
	assert.ErrorContains(t, err, "connection refused")
}

// Any answer but 200 fails the check, a redirect included.
func TestHealthcheck_NotOK(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusNotFound, http.StatusFound} {
		server := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			assert.Equal(t, "/healthz", r.URL.Path)
			http.Redirect(w, r, "/elsewhere", status) // sets Location, answers status
		}))
		err := healthcheck(context.Background(), server.Listener.Addr().String(), io.Discard)
		assert.ErrorContains(t, err, "answered "+strconv.Itoa(status), status)
		server.Close()
	}
}

// A wildcard listen address is checked on the loopback interface.
func TestHealthzURL(t *testing.T) {
	for addr, want := range map[string]string{
		":8080":          "http://127.0.0.1:8080/healthz",
		"0.0.0.0:8080":   "http://127.0.0.1:8080/healthz",
		"[::]:9000":      "http://[::1]:9000/healthz",
		"127.0.0.2:8080": "http://127.0.0.2:8080/healthz",
		"[::1]:8080":     "http://[::1]:8080/healthz",
		"localhost:8080": "http://localhost:8080/healthz",
		":http":          "http://127.0.0.1:80/healthz",
	} {
		got, err := healthzURL(addr)
		require.NoError(t, err, addr)
		assert.Equal(t, want, got, addr)
	}
	for _, addr := range []string{"127.0.0.1:0", ":0", "8080", "", "127.0.0.1:nosuchport"} {
		_, err := healthzURL(addr)
		assert.ErrorContains(t, err, "HTTP_ADDR", addr)
	}
}
