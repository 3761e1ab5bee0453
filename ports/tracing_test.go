package ports_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/gin-gonic/gin"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/internal/telemetry"
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

// tracedHandler is the API observed by tracing's middleware, which trusts
// a client's traceparent or not; a registration that is always overloaded,
// and a log that keeps the trace ids.
func tracedHandler(t *testing.T, tracing telemetry.Tracing, trustClient bool) (http.Handler, *traceIDs) {
	t.Helper()
	logs := &traceIDs{Handler: slog.DiscardHandler}
	cfg := ports.HTTPConfig{
		Observe:           []gin.HandlerFunc{tracing.HTTPRequests(trustClient)},
		Ready:             func(context.Context) error { return nil },
		Logger:            slog.New(logs),
		IdempotencySecret: make([]byte, 32),
	}
	handler, err := ports.NewHandler(app.Application{Commands: app.Commands{
		RegisterUser: command.NewRegisterUserHandler(nil, &overloadedHasher{}, nil, nil, nil),
	}}, cfg)
	require.NoError(t, err)
	return handler, logs
}

func serve(handler http.Handler, method, target, traceparent string) *httptest.ResponseRecorder {
	header := http.Header{}
	if traceparent != "" {
		header.Set("traceparent", traceparent)
	}
	return serveWith(handler, method, target, header)
}

func serveWith(handler http.Handler, method, target string, header http.Header) *httptest.ResponseRecorder {
	var body *strings.Reader
	if method == http.MethodPost {
		body = strings.NewReader(adaBody)
	} else {
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, target, body)
	for name, values := range header {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "tracing-test/1.0")
	rec := httptest.NewRecorder()
	handler.ServeHTTP(rec, req)
	return rec
}

// bigTracestate is a valid tracestate of 30 members, 7.8 KB: whatever a
// client sends, within the W3C limits.
func bigTracestate() string {
	members := make([]string, 30)
	for i := range members {
		members[i] = fmt.Sprintf("k%02d=%s", i, strings.Repeat("v", 255))
	}
	return strings.Join(members, ",")
}

// Each request is a span named by its method and route template, without
// the client's address or user agent. A client's trace context is not
// trusted by default: the request starts a trace of its own, linked to the
// client's span, and its log line carries the server's trace.
func TestHTTPTracing_SpanPerRequest(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	handler, logs := tracedHandler(t, telemetry.Tracing{TracerProvider: provider}, false)

	tracestate := bigTracestate()
	require.Greater(t, len(tracestate), 7700)
	client := http.Header{"Traceparent": {callerTraceparent}, "Tracestate": {tracestate}, "Baggage": {"user=ada"}}
	assert.Equal(t, http.StatusServiceUnavailable, serveWith(handler, http.MethodPost, "/users", client).Code)
	assert.Equal(t, http.StatusOK, serve(handler, http.MethodGet, "/healthz?probe=1", "").Code)

	spans := recorder.Ended()
	require.Len(t, spans, 2)
	assert.Equal(t, "POST /users", spans[0].Name())
	assert.Equal(t, trace.SpanKindServer, spans[0].SpanKind())
	request := spans[0].SpanContext()
	assert.NotEqual(t, "4bf92f3577b34da6a3ce929d0e0e4736", request.TraceID().String(), "a trace of the server's own")
	assert.False(t, spans[0].Parent().IsValid(), "the client's span is not the parent")
	assert.Zero(t, request.TraceState().Len(), "no tracestate of the client's")
	require.Len(t, spans[0].Links(), 1, "a link to the client's span")
	link := spans[0].Links()[0].SpanContext
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", link.TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", link.SpanID().String())
	assert.Zero(t, link.TraceState().Len(), "the link keeps no tracestate")
	assert.Equal(t, "GET /healthz", spans[1].Name())
	assert.Empty(t, spans[1].Links())
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
	assert.Equal(t, []string{request.TraceID().String(), spans[1].SpanContext().TraceID().String()}, logs.ids,
		"the request's log line has its span's trace")
}

// Trusted (HTTPRequests(true), the service's TrustClientTraceparent), a
// client's traceparent is its request's parent, as a caller inside the
// deployment's trust wants.
func TestHTTPTracing_TrustedClientIsTheParent(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	handler, logs := tracedHandler(t, telemetry.Tracing{TracerProvider: provider}, true)

	serveWith(handler, http.MethodPost, "/users",
		http.Header{"Traceparent": {callerTraceparent}, "Tracestate": {bigTracestate()}})

	spans := recorder.Ended()
	require.Len(t, spans, 1)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[0].SpanContext().TraceID().String())
	assert.Equal(t, 30, spans[0].SpanContext().TraceState().Len(), "the caller's tracestate is carried on")
	assert.Equal(t, "00f067aa0ba902b7", spans[0].Parent().SpanID().String(), "the caller's span is the parent")
	assert.Empty(t, spans[0].Links())
	assert.Equal(t, []string{"4bf92f3577b34da6a3ce929d0e0e4736"}, logs.ids)
}

// An untrusted client's sampling flag decides nothing: the server's
// sampler decides for the trace it starts. A trusted client's decides, as
// the parent-based sampler's parent.
func TestHTTPTracing_SamplingIsTheServersUnlessTrusted(t *testing.T) {
	const sampled, notSampled = callerTraceparent, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
	for _, tt := range []struct {
		name        string
		sampler     sdktrace.Sampler
		trust       bool
		traceparent string
		recorded    bool
	}{
		{"untrusted, sampled, server samples nothing", sdktrace.ParentBased(sdktrace.NeverSample()), false, sampled, false},
		{"untrusted, not sampled, server samples all", sdktrace.ParentBased(sdktrace.AlwaysSample()), false, notSampled, true},
		{"trusted, sampled, server samples nothing", sdktrace.ParentBased(sdktrace.NeverSample()), true, sampled, true},
		{"trusted, not sampled, server samples all", sdktrace.ParentBased(sdktrace.AlwaysSample()), true, notSampled, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			recorder := tracetest.NewSpanRecorder()
			provider := sdktrace.NewTracerProvider(sdktrace.WithSampler(tt.sampler), sdktrace.WithSpanProcessor(recorder))
			handler, _ := tracedHandler(t, telemetry.Tracing{TracerProvider: provider}, tt.trust)
			serve(handler, http.MethodGet, "/healthz", tt.traceparent)
			assert.Equal(t, tt.recorded, len(recorder.Ended()) == 1)
		})
	}
}

// Without a tracer provider no span is made, and nothing of an untrusted
// client's context is taken up: no log line carries its trace.
func TestHTTPTracing_WithoutProviderIgnoresTheClientsTrace(t *testing.T) {
	handler, logs := tracedHandler(t, telemetry.Tracing{}, false)
	serve(handler, http.MethodGet, "/healthz", callerTraceparent)
	serve(handler, http.MethodGet, "/healthz", "")
	assert.Equal(t, []string{"", ""}, logs.ids)
}

// Without a tracer provider, a trusted caller's trace is taken up: the
// request's log line carries it.
func TestHTTPTracing_WithoutProviderCarriesATrustedCallersTrace(t *testing.T) {
	handler, logs := tracedHandler(t, telemetry.Tracing{}, true)
	serve(handler, http.MethodGet, "/healthz", callerTraceparent)
	serve(handler, http.MethodGet, "/healthz", "")
	serve(handler, http.MethodGet, "/healthz", "00-not-a-trace")
	assert.Equal(t, []string{"4bf92f3577b34da6a3ce929d0e0e4736", "", ""}, logs.ids)
}
