package ports_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/ports"
)

// callerTraceparent is the traceparent of a caller's span.
const callerTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// traceIDs keeps the trace id of the context of each log record.
type traceIDs struct {
	slog.Handler
	mu  sync.Mutex
	ids []string
}

func (h *traceIDs) Enabled(context.Context, slog.Level) bool { return true }

func (h *traceIDs) Handle(ctx context.Context, _ slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := ""
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		id = sc.TraceID().String()
	}
	h.ids = append(h.ids, id)
	return nil
}

// tracedHandler is the API with cfg's tracing, a registration that is
// always overloaded, and a log that keeps the trace ids.
func tracedHandler(t *testing.T, cfg ports.HTTPConfig) (http.Handler, *traceIDs) {
	t.Helper()
	logs := &traceIDs{Handler: slog.DiscardHandler}
	cfg.Ready = func(context.Context) error { return nil }
	cfg.Logger = slog.New(logs)
	cfg.IdempotencySecret = make([]byte, 32)
	handler, err := ports.NewHandler(app.Application{Commands: app.Commands{
		RegisterUser: command.NewRegisterUserHandler(nil, &overloadedHasher{}, nil, nil),
	}}, cfg)
	require.NoError(t, err)
	return handler, logs
}

func serve(handler http.Handler, method, target, traceparent string) *httptest.ResponseRecorder {
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(adaBody)
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, target, body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tracing-test/1.0")
	if traceparent != "" {
		req.Header.Set("traceparent", traceparent)
	}
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec
}

// Each request is a span named by its method and route template, without
// the client's address or user agent; a caller's traceparent is its parent.
func TestHTTPTracing_SpanPerRequest(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	handler, logs := tracedHandler(t, ports.HTTPConfig{TracerProvider: provider})

	assert.Equal(t, http.StatusServiceUnavailable, serve(handler, http.MethodPost, "/users", callerTraceparent).Code)
	assert.Equal(t, http.StatusOK, serve(handler, http.MethodGet, "/healthz?probe=1", "").Code)

	spans := recorder.Ended()
	require.Len(t, spans, 2)
	assert.Equal(t, "POST /users", spans[0].Name())
	assert.Equal(t, trace.SpanKindServer, spans[0].SpanKind())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[0].SpanContext().TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", spans[0].Parent().SpanID().String(), "the caller's span is the parent")
	assert.Equal(t, "GET /healthz", spans[1].Name())
	for _, span := range spans {
		keys := map[string]string{}
		for _, attr := range span.Attributes() {
			keys[string(attr.Key)] = attr.Value.String()
		}
		assert.Contains(t, keys, "http.route")
		assert.Contains(t, keys, "http.response.status_code")
		for _, private := range []string{"client.address", "network.peer.address", "network.peer.port", "user_agent.original"} {
			assert.NotContains(t, keys, private, "%s: %v", span.Name(), keys)
		}
	}
	require.Len(t, logs.ids, 2, "one log line per request")
	assert.Equal(t, []string{"4bf92f3577b34da6a3ce929d0e0e4736", spans[1].SpanContext().TraceID().String()}, logs.ids,
		"the request's log line has its span's trace")
}

// Without a tracer provider no span is made, but a caller's trace is taken
// up: the request's log line carries it.
func TestHTTPTracing_WithoutProviderCarriesTheCallersTrace(t *testing.T) {
	handler, logs := tracedHandler(t, ports.HTTPConfig{})
	serve(handler, http.MethodGet, "/healthz", callerTraceparent)
	serve(handler, http.MethodGet, "/healthz", "")
	serve(handler, http.MethodGet, "/healthz", "00-not-a-trace")
	assert.Equal(t, []string{"4bf92f3577b34da6a3ce929d0e0e4736", "", ""}, logs.ids)
}
