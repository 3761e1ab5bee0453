package service

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
)

// meteredService is a Service on the database at dbURL over the sql
// transport, running until the test ends.
type meteredService struct {
	svc    *Service
	mailer *testfake.Mailer
	logs   *testenv.LockedBuffer
	stop   func() error
}

func startMetered(t *testing.T, dbURL, metricsAddr string) *meteredService {
	t.Helper()
	return startMeteredWith(t, Config{
		PubSub: "sql", DatabaseURL: dbURL, HTTPAddr: "127.0.0.1:0", MetricsAddr: metricsAddr,
		BcryptCost: bcrypt.MinCost, SignupPoints: 100, MailFrom: "no-reply@onboard.local",
		MasterKeys: testMasterKeys(t, dbURL),
	})
}

func startMeteredWith(t *testing.T, cfg Config) *meteredService {
	t.Helper()
	logs := &testenv.LockedBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})
	mailer := &testfake.Mailer{}
	ctx, cancel := context.WithCancel(context.Background())
	svc, err := New(ctx, cfg, mailer, slog.New(slog.NewTextHandler(logs, nil)))
	require.NoError(t, err)
	runErr := make(chan error, 1)
	go func() { runErr <- svc.Run(ctx) }()
	stopped := false
	m := &meteredService{svc: svc, mailer: mailer, logs: logs, stop: func() error {
		cancel()
		if stopped {
			return nil
		}
		stopped = true
		select {
		case err := <-runErr:
			return err
		case <-time.After(serviceWait):
			t.Error("the service did not stop")
			return nil
		}
	}}
	t.Cleanup(func() { _ = m.stop() })
	select {
	case <-svc.handlers.Running():
	case err := <-runErr:
		runErr <- err // for the cleanup
		t.Fatalf("the service stopped at start: %v", err)
	case <-time.After(serviceWait):
		t.Fatal("the handlers router did not start")
	}
	return m
}

// httpGet answers GET url: its status and body, or the error.
func httpGet(url string) (int, string, error) {
	resp, err := (&http.Client{Timeout: 5 * time.Second}).Get(url)
	if err != nil {
		return 0, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// After a registration, /metrics on the API's listener (on the embedded
// SQLite database, without METRICS_ADDR) shows its effects and the
// backlogs drained, and promlint (promtool check metrics) finds nothing to
// say.
func TestService_MetricsOnTheAPIListener(t *testing.T) {
	t.Parallel()
	s := startMetered(t, testenv.SQLiteDatabase(t), "")
	api := "http://" + s.svc.Addr()
	resp, err := http.Post(api+"/users", "application/json",
		strings.NewReader(`{"name":"Ada Lovelace","email":"ada@example.com","password":"correct horse battery"}`))
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	require.Equal(t, http.StatusCreated, resp.StatusCode)

	want := []string{
		`onboard_emails_sent_total{handler="` + event.SendWelcomeEmailName + `"} 1`,
		`onboard_points_grants_total{reason="signup"} 1`,
		"onboard_outbox_pending_messages 0",
		`onboard_handler_backlog_messages{handler="` + event.SendWelcomeEmailName + `"} 0`,
		`onboard_build_info{database="sqlite",goversion="go`,
		`onboard_registrations_total{outcome="created"} 1`,
		`onboard_http_request_duration_seconds_count{method="POST",route="/users"} 1`,
		// Observed once the handler has returned, after its grant counted.
		`onboard_handler_execution_time_seconds_count{handler_name="` + event.SeedSignupPointsName + `",success="true"} 1`,
		`onboard_retry_queue_messages{handler="` + event.SendWelcomeEmailName + `"} 0`,
		"onboard_poison_queue_messages 0",
		`onboard_backlog_up{source="handlers"} 1`,
		// The hash unknown addresses are compared with, made at start, and
		// the registration's.
		"onboard_password_hash_wait_seconds_count 2",
		"onboard_password_hash_cpu_seconds_total ",
		"go_goroutines ",
		"process_cpu_seconds_total ",
	}
	showsAll := func(body string) bool {
		for _, w := range want {
			if !strings.Contains(body, w) {
				return false
			}
		}
		return true
	}
	var text string
	assert.Eventually(t, func() bool {
		status, body, err := httpGet(api + "/metrics")
		text = body
		return err == nil && status == http.StatusOK && showsAll(body)
	}, serviceWait, 50*time.Millisecond, "the effects and the drained backlogs show")
	for _, w := range want {
		assert.Contains(t, text, w)
	}
	problems, err := promlint.New(strings.NewReader(text)).Lint()
	require.NoError(t, err)
	assert.Empty(t, problems, "promtool check metrics")
	assert.NotContains(t, s.logs.String(), "METRICS_ADDR", "no warning on the embedded database")
}

// On PostgreSQL or MySQL, whose API may be public, /metrics is not served
// on the API's listener without METRICS_ADDR: it answers 404 like any
// unknown route, and the start says once to set METRICS_ADDR.
func TestService_MetricsOffTheAPIListenerOutsideSQLite(t *testing.T) {
	t.Parallel()
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		if backend.Name == "sqlite" {
			return // TestService_MetricsOnTheAPIListener
		}
		s := startMetered(t, backend.URL(t), "")
		status, body, err := httpGet("http://" + s.svc.Addr() + "/metrics")
		require.NoError(t, err)
		assert.Equal(t, http.StatusNotFound, status)
		assert.Contains(t, body, `"code":"not-found"`, "the API's 404 for an unknown route")
		assert.Empty(t, s.svc.MetricsAddr())
		require.Eventually(t, func() bool { return strings.Contains(s.logs.String(), "onboard is serving") },
			serviceWait, 10*time.Millisecond)
		var warnings []string
		for _, line := range strings.Split(s.logs.String(), "\n") {
			if strings.Contains(line, "METRICS_ADDR") {
				warnings = append(warnings, line)
			}
		}
		require.Len(t, warnings, 1, "one line about METRICS_ADDR")
		assert.Contains(t, warnings[0], "level=WARN")
		assert.Contains(t, warnings[0], "set METRICS_ADDR")
	})
}

// METRICS_ADDR serves /metrics on a listener of its own, which stops with
// the service; the API's listener then answers 404.
func TestService_MetricsAddrServesMetricsApart(t *testing.T) {
	t.Parallel()
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		metricsApart(t, startMetered(t, backend.URL(t), "127.0.0.1:0"))
	})
}

func metricsApart(t *testing.T, s *meteredService) {
	require.NotEmpty(t, s.svc.MetricsAddr())
	status, body, err := httpGet("http://" + s.svc.MetricsAddr() + "/metrics")
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, status)
	assert.Contains(t, body, "onboard_build_info{")
	status, _, err = httpGet("http://" + s.svc.MetricsAddr() + "/users")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, status, "the metrics listener serves nothing else")
	status, _, err = httpGet("http://" + s.svc.Addr() + "/metrics")
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, status, "no /metrics on the API's listener")

	assert.NotContains(t, s.logs.String(), "set METRICS_ADDR")

	require.NoError(t, s.stop())
	_, _, err = httpGet("http://" + s.svc.MetricsAddr() + "/metrics")
	assert.Error(t, err, "the metrics listener stops with the service")
}

// PPROF=on serves Go's profiles beside /metrics, and never on the API's
// listener.
func TestService_PProfOnTheMetricsListener(t *testing.T) {
	t.Parallel()
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("pprof %t", on), func(t *testing.T) {
			dbURL := testenv.SQLiteDatabase(t)
			s := startMeteredWith(t, Config{
				PubSub: "sql", DatabaseURL: dbURL, HTTPAddr: "127.0.0.1:0", MetricsAddr: "127.0.0.1:0", PProf: on,
				BcryptCost: bcrypt.MinCost, SignupPoints: 100, MailFrom: "no-reply@onboard.local",
				MasterKeys: testMasterKeys(t, dbURL),
			})
			defer func() { assert.NoError(t, s.stop()) }()
			status, body, err := httpGet("http://" + s.svc.MetricsAddr() + "/debug/pprof/goroutine?debug=1")
			require.NoError(t, err)
			if on {
				assert.Equal(t, http.StatusOK, status)
				assert.Contains(t, body, "goroutine profile:")
			} else {
				assert.Equal(t, http.StatusNotFound, status)
			}
			status, _, err = httpGet("http://" + s.svc.Addr() + "/debug/pprof/goroutine?debug=1")
			require.NoError(t, err)
			assert.Equal(t, http.StatusNotFound, status, "never on the API's listener")
		})
	}
}

func TestLoadConfig_PProf(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(env(map[string]string{"METRICS_ADDR": ":9090"}))
	require.NoError(t, err)
	assert.False(t, cfg.PProf, "off by default")
	cfg, err = LoadConfig(env(map[string]string{"METRICS_ADDR": ":9090", "PPROF": "on"}))
	require.NoError(t, err)
	assert.True(t, cfg.PProf)
	_, err = LoadConfig(env(map[string]string{"PPROF": "on"}))
	assert.ErrorContains(t, err, "PPROF: on needs METRICS_ADDR")
	_, err = LoadConfig(env(map[string]string{"METRICS_ADDR": ":9090", "PPROF": "yes"}))
	assert.ErrorContains(t, err, `PPROF: want on or off, got "yes"`)
}

func TestLoadConfig_MetricsAddr(t *testing.T) {
	t.Parallel()
	cfg, err := LoadConfig(env(nil))
	require.NoError(t, err)
	assert.Empty(t, cfg.MetricsAddr, "on the API's listener by default")
	cfg, err = LoadConfig(env(map[string]string{"METRICS_ADDR": ":9090"}))
	require.NoError(t, err)
	assert.Equal(t, ":9090", cfg.MetricsAddr)
	_, err = LoadConfig(env(map[string]string{"METRICS_ADDR": "9090"}))
	assert.ErrorContains(t, err, "METRICS_ADDR")
}
