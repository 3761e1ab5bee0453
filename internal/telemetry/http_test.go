package telemetry_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/onboard/onboard/internal/telemetry"
)

// BenchmarkHTTPRequests: what the API's first middleware, the tracing
// one, costs a request when no span is exported (the service without
// OTEL_EXPORTER_OTLP_ENDPOINT), beside the alternatives: otelgin on a
// no-op provider, and on an SDK provider without a processor.
//
//	go test -run '^$' -bench HTTPRequests -benchmem ./internal/telemetry/
func BenchmarkHTTPRequests(b *testing.B) {
	const callerTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, bench := range []struct {
		name        string
		middleware  []gin.HandlerFunc
		traceparent string
	}{
		{"no middleware", nil, ""},
		{"off", []gin.HandlerFunc{telemetry.Tracing{}.HTTPRequests(false)}, ""},
		{"off, caller's traceparent", []gin.HandlerFunc{telemetry.Tracing{}.HTTPRequests(false)}, callerTraceparent},
		{"off, trusted", []gin.HandlerFunc{telemetry.Tracing{}.HTTPRequests(true)}, ""},
		{"off, trusted caller's traceparent", []gin.HandlerFunc{telemetry.Tracing{}.HTTPRequests(true)}, callerTraceparent},
		{"otelgin, no-op provider", []gin.HandlerFunc{
			telemetry.Tracing{TracerProvider: noop.NewTracerProvider()}.HTTPRequests(false)}, ""},
		{"otelgin, SDK without processor", []gin.HandlerFunc{
			telemetry.Tracing{TracerProvider: sdktrace.NewTracerProvider()}.HTTPRequests(false)}, ""},
	} {
		b.Run(bench.name, func(b *testing.B) {
			gin.SetMode(gin.ReleaseMode)
			router := gin.New()
			router.Use(bench.middleware...)
			router.GET("/healthz", func(c *gin.Context) { c.Status(http.StatusOK) })
			req := httptest.NewRequest(http.MethodGet, "/healthz", nil)
			if bench.traceparent != "" {
				req.Header.Set("traceparent", bench.traceparent)
			}
			b.ReportAllocs()
			for b.Loop() {
				router.ServeHTTP(httptest.NewRecorder(), req)
			}
		})
	}
}
