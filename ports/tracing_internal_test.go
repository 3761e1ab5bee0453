package ports

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gin-gonic/gin"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkTraceRequests: what the first middleware costs a request when
// no span is exported (the service without OTEL_EXPORTER_OTLP_ENDPOINT),
// beside the alternatives: otelgin on a no-op provider, and on an SDK
// provider without a processor.
//
//	go test -run '^$' -bench TraceRequests -benchmem ./ports/
func BenchmarkTraceRequests(b *testing.B) {
	for _, bench := range []struct {
		name        string
		middleware  []gin.HandlerFunc
		traceparent string
	}{
		{"no middleware", nil, ""},
		{"off", []gin.HandlerFunc{HTTPConfig{}.traceRequests()}, ""},
		{"off, caller's traceparent", []gin.HandlerFunc{HTTPConfig{}.traceRequests()},
			"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"off, trusted", []gin.HandlerFunc{HTTPConfig{TrustClientTraceparent: true}.traceRequests()}, ""},
		{"off, trusted caller's traceparent", []gin.HandlerFunc{HTTPConfig{TrustClientTraceparent: true}.traceRequests()},
			"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{"otelgin, no-op provider", []gin.HandlerFunc{HTTPConfig{TracerProvider: noop.NewTracerProvider()}.traceRequests()}, ""},
		{"otelgin, SDK without processor", []gin.HandlerFunc{
			HTTPConfig{TracerProvider: sdktrace.NewTracerProvider()}.traceRequests()}, ""},
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
