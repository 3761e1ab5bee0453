package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/internal/telemetry"
)

// DefaultServiceName is the service.name of the spans without
// OTEL_SERVICE_NAME.
const DefaultServiceName = "onboard"

// Tracing: LoadConfig checks the OTEL_* variables and decides whether spans
// are exported; the OpenTelemetry SDK then reads them (and the other
// OTEL_EXPORTER_OTLP_* and OTEL_BSP_* variables) from the environment itself.

// loadTracing checks the tracing variables and reports whether spans are
// exported: an OTLP endpoint is set and OTEL_SDK_DISABLED is not true.
func loadTracing(getenv func(string) string) (bool, error) {
	var errs []error
	disabled := false
	switch raw := strings.ToLower(strings.TrimSpace(getenv("OTEL_SDK_DISABLED"))); raw {
	case "", "false":
	case "true":
		disabled = true
	default:
		errs = append(errs, fmt.Errorf("OTEL_SDK_DISABLED: want true or false, got %q", raw))
	}
	endpoint := false
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"} {
		raw := getenv(name)
		if raw == "" {
			continue
		}
		endpoint = true
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s: want an http:// or https:// URL (OTLP over HTTP)", name))
		}
	}
	// The exporter speaks OTLP over HTTP with protobuf: a collector's gRPC
	// port would take its requests for garbage, and drop every span.
	for _, name := range []string{"OTEL_EXPORTER_OTLP_PROTOCOL", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"} {
		if protocol := strings.TrimSpace(getenv(name)); protocol != "" && protocol != "http/protobuf" {
			errs = append(errs, fmt.Errorf("%s: this build exports over http/protobuf only, got %q", name, protocol))
		}
	}
	arg := strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER_ARG")) // the ratio samplers' alone
	switch sampler := strings.ToLower(strings.TrimSpace(getenv("OTEL_TRACES_SAMPLER"))); sampler {
	case "", "always_on", "always_off", "parentbased_always_on", "parentbased_always_off":
	case "traceidratio", "parentbased_traceidratio":
		if ratio, err := strconv.ParseFloat(arg, 64); arg != "" && (err != nil || ratio < 0 || ratio > 1) {
			errs = append(errs, fmt.Errorf("OTEL_TRACES_SAMPLER_ARG: want a ratio from 0 to 1, got %q", arg))
		}
	default:
		errs = append(errs, fmt.Errorf("OTEL_TRACES_SAMPLER: want always_on, always_off, traceidratio or "+
			"parentbased_ and one of them, got %q", sampler))
	}
	// OTEL_SERVICE_NAME takes any name; the SDK reads it. Read here too, as
	// every variable of the help is (TestUsage_ListsEveryVariableWithItsDefault).
	getenv("OTEL_SERVICE_NAME")
	if raw := getenv("OTEL_RESOURCE_ATTRIBUTES"); raw != "" {
		for pair := range strings.SplitSeq(raw, ",") {
			key, value, found := strings.Cut(pair, "=")
			if _, err := url.PathUnescape(strings.TrimSpace(value)); !found || strings.TrimSpace(key) == "" || err != nil {
				errs = append(errs, errors.New("OTEL_RESOURCE_ATTRIBUTES: want key=value pairs separated by commas, "+
					"values percent-encoded"))
				break
			}
		}
	}
	return endpoint && !disabled, errors.Join(errs...)
}

// spans is the service's tracing: the provider its parts make spans
// with (none when spans go nowhere) and the W3C trace context propagator.
type spans struct {
	tracing telemetry.Tracing
	// shutdown flushes and stops the provider the service made; nil when
	// there is none.
	shutdown func(context.Context) error
	logger   *slog.Logger
}

// newSpans is cfg.TracerProvider when set; else, with cfg.ExportTraces,
// an SDK provider that batches spans to the OTLP/HTTP exporter (which
// reads its endpoint, headers and timeouts from the environment), its
// sampler from OTEL_TRACES_SAMPLER; else no provider: no span is made, and
// a traceparent that comes in with a message, or with a request from a
// trusted client (OTEL_TRUST_CLIENT_TRACEPARENT), is carried on.
func newSpans(ctx context.Context, cfg Config, logger *slog.Logger) (spans, error) {
	t := spans{tracing: telemetry.Tracing{Propagator: propagation.TraceContext{}}, logger: logger}
	switch {
	case cfg.TracerProvider != nil:
		t.tracing.TracerProvider = cfg.TracerProvider
	case cfg.ExportTraces:
		exporter, err := otlptracehttp.New(ctx)
		if err != nil {
			return t, fmt.Errorf("OTLP traces exporter: %w", err)
		}
		// Later detectors win: the service name is OTEL_SERVICE_NAME, else
		// a service.name in OTEL_RESOURCE_ATTRIBUTES, else the default.
		res, err := resource.New(ctx, resource.WithTelemetrySDK(),
			resource.WithAttributes(semconv.ServiceName(DefaultServiceName)), resource.WithFromEnv())
		if err != nil {
			return t, fmt.Errorf("OTEL_RESOURCE_ATTRIBUTES: %w", err)
		}
		provider := sdktrace.NewTracerProvider(sdktrace.WithResource(res),
			sdktrace.WithBatcher(loggedExporter{SpanExporter: exporter, logger: logger}))
		t.tracing.TracerProvider, t.shutdown = provider, provider.Shutdown
	}
	return t, nil
}

// flushTimeout bounds the export of the last spans at the stop.
const flushTimeout = 5 * time.Second

// close exports the spans still batched and stops the provider the
// service made.
func (t spans) close() {
	if t.shutdown == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	if err := t.shutdown(ctx); err != nil {
		t.logger.Warn("spans not exported at the stop", "error", err)
	}
}

// loggedExporter logs a failed export on the service's log (the batch is
// dropped), instead of OpenTelemetry's global error handler.
type loggedExporter struct {
	sdktrace.SpanExporter
	logger *slog.Logger
}

func (e loggedExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	if err := e.SpanExporter.ExportSpans(ctx, spans); err != nil {
		e.logger.WarnContext(ctx, "spans not exported", "spans", len(spans), "error", err)
	}
	return nil
}

// traceLogs adds the trace id of the context's span, when it has a valid
// one, to each record logged with a context: "trace_id" beside
// "correlation_id".
type traceLogs struct{ slog.Handler }

// Handle implements slog.Handler.
func (h traceLogs) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h traceLogs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return traceLogs{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h traceLogs) WithGroup(name string) slog.Handler {
	return traceLogs{h.Handler.WithGroup(name)}
}
