package ports_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/gin-gonic/gin"
	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/hasher"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/internal/apitest"
	"github.com/onboard/onboard/internal/telemetry"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/ports"
)

// meteredAPI is the API on a SQLite user store, observed by the service's
// metrics, on a registry of their own, served at /metrics; its exchanges
// are checked against the contract.
type meteredAPI struct {
	http.Handler
	registry *prometheus.Registry
}

func newMeteredAPI(t *testing.T, cfg ports.HTTPConfig) meteredAPI {
	t.Helper()
	db := testenv.MigratedDB(t, testenv.Backend{Name: "sqlite", URL: testenv.SQLiteDatabase})
	outbox, err := watermillsql.NewSQLSubscriber(db.DB, transport.OutboxGroup, watermill.NopLogger{})
	require.NoError(t, err)
	require.NoError(t, outbox.SubscribeInitialize(transport.OutboxTopic))
	require.NoError(t, outbox.Close())
	users := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
	_, err = users.ReadModel().Prepare(testenv.Context(t))
	require.NoError(t, err)
	hasher, err := hasher.New(hasher.Config{Cost: bcrypt.MinCost})
	require.NoError(t, err)
	sessions, err := adapters.NewSessionStore(adapters.SessionStoreConfig{DB: db.DB})
	require.NoError(t, err)
	application := app.Application{
		Commands: app.Commands{RegisterUser: command.NewRegisterUserHandler(users, hasher, nil, nil, nil).WithSessions(sessions)},
		Queries: app.Queries{UserByID: query.NewUserByIDHandler(users.ReadModel()),
			SessionUser: query.NewSessionUserHandler(sessions)},
	}
	metrics, err := telemetry.NewMetrics()
	require.NoError(t, err)
	cfg.Observe = append(cfg.Observe, metrics.HTTPRequests())
	cfg.MetricsHandler = metrics.Handler(slog.New(slog.DiscardHandler))
	cfg.Ready = func(context.Context) error { return nil }
	cfg.IdempotencySecret = bytes.Repeat([]byte{7}, 32)
	handler, err := ports.NewHandler(application, cfg)
	require.NoError(t, err)
	return meteredAPI{Handler: apitest.New(t).Handler(handler), registry: metrics.Registry()}
}

func (a meteredAPI) do(method, path, body string, header map[string]string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.RemoteAddr = "192.0.2.1:1234"
	req.Header.Set("Content-Type", "application/json")
	for name, value := range header {
		req.Header.Set(name, value)
	}
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	return rec
}

// scrape reads /metrics as a scraper would.
func (a meteredAPI) scrape(t *testing.T) string {
	t.Helper()
	rec := a.do(http.MethodGet, "/metrics", "", nil)
	require.Equal(t, http.StatusOK, rec.Code)
	body, err := io.ReadAll(rec.Body)
	require.NoError(t, err)
	return string(body)
}

func TestHTTPMetrics_LabelRoutesByTemplate(t *testing.T) {
	api := newMeteredAPI(t, ports.HTTPConfig{})
	id := uuid.NewString()
	require.Equal(t, http.StatusUnauthorized, api.do(http.MethodGet, "/users/"+id, "", nil).Code)
	require.Equal(t, http.StatusNotFound, api.do(http.MethodGet, "/no/such/"+id, "", nil).Code)
	api.do("BREW", "/users/"+id, "", nil)
	require.Equal(t, http.StatusCreated, api.do(http.MethodPost, "/users", adaBody, nil).Code)

	requests := func(route, method, status string) float64 {
		return counterValue(t, api.registry, "onboard_http_requests_total",
			map[string]string{"route": route, "method": method, "status": status})
	}
	assert.Equal(t, 1.0, requests("/users/:id", "GET", "401"), "a known route, by its template")
	assert.Equal(t, 1.0, requests(telemetry.UnmatchedRoute, "GET", "404"), "no route: unmatched")
	assert.Equal(t, 1.0, requests(telemetry.UnmatchedRoute, "other", "405"), "an unknown method is no label of its own")
	assert.Equal(t, 1.0, requests("/users", "POST", "201"))
	text := api.scrape(t)
	assert.NotContains(t, text, id, "no id becomes a label")
	assert.NotContains(t, text, "BREW")
	assert.Contains(t, text, `onboard_http_request_duration_seconds_count{method="POST",route="/users"} 1`)
}

func TestHTTPMetrics_CountRegistrationsByOutcome(t *testing.T) {
	api := newMeteredAPI(t, ports.HTTPConfig{})
	key := map[string]string{ports.IdempotencyKeyHeader: "order-1"}
	other := `{"name":"Ada Byron","email":"ada@example.com","password":"correct horse battery"}`
	for _, r := range []struct {
		body   string
		header map[string]string
		status int
	}{
		{adaBody, key, http.StatusCreated},
		{adaBody, key, http.StatusCreated},                      // the same request again
		{other, key, http.StatusUnprocessableEntity},            // the key with another body
		{adaBody, nil, http.StatusConflict},                     // the address is taken
		{`{"name":"Ada"}`, nil, http.StatusUnprocessableEntity}, // fields missing
		{`{"name":`, nil, http.StatusBadRequest},                // not JSON
	} {
		rec := api.do(http.MethodPost, "/users", r.body, r.header)
		require.Equal(t, r.status, rec.Code, rec.Body.String())
	}

	text := api.scrape(t)
	for outcome, want := range map[string]string{
		telemetry.RegistrationCreated: "1", telemetry.RegistrationRepeated: "1", telemetry.RegistrationKeyReuse: "1",
		telemetry.RegistrationTaken: "1", telemetry.RegistrationInvalid: "2", telemetry.RegistrationOverload: "0",
		telemetry.RegistrationLimited: "0", telemetry.RegistrationFailed: "0",
	} {
		assert.Contains(t, text, `onboard_registrations_total{outcome="`+outcome+`"} `+want+"\n", outcome)
	}
}

func TestHTTPMetrics_CountOverloadedAndRateLimited(t *testing.T) {
	metrics, err := telemetry.NewMetrics()
	require.NoError(t, err)
	registry := metrics.Registry()
	handler, _ := newTestHandler(t, ports.HTTPConfig{
		Observe:       []gin.HandlerFunc{metrics.HTTPRequests()},
		PasswordLimit: ports.RateLimit{Count: 1, Per: time.Hour, Burst: 1},
	})
	require.Equal(t, http.StatusServiceUnavailable, register(handler, "192.0.2.1:1", nil).Code)
	require.Equal(t, http.StatusTooManyRequests, register(handler, "192.0.2.1:1", nil).Code)

	outcome := func(o string) float64 {
		return counterValue(t, registry, "onboard_registrations_total", map[string]string{"outcome": o})
	}
	assert.Equal(t, 1.0, outcome(telemetry.RegistrationOverload))
	assert.Equal(t, 1.0, outcome(telemetry.RegistrationLimited))
	assert.Equal(t, 1.0, counterValue(t, registry, "onboard_http_overloaded_total",
		map[string]string{"route": "/users", "method": "POST"}))
}

func TestHTTPMetrics_MetricsRouteOnlyWithAHandler(t *testing.T) {
	handler, _ := newTestHandler(t, ports.HTTPConfig{})
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	assert.Equal(t, http.StatusNotFound, rec.Code, "no /metrics on this listener")
}

// counterValue is the value of the counter of name with exactly labels in
// registry; the test fails when there is none.
func counterValue(t *testing.T, registry *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := registry.Gather()
	require.NoError(t, err)
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			if assert.ObjectsAreEqual(labels, got) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s%v", name, labels)
	return 0
}
