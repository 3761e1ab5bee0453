package service

import (
	"context"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/internal/testenv"
)

// Spans are exported when an OTLP endpoint is set, unless the SDK is
// disabled.
func TestLoadConfig_TracesExport(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		name string
		vars map[string]string
		want bool
	}{
		{"no endpoint", nil, false},
		{"an endpoint", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true},
		{"a traces endpoint", map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector/v1/traces"}, true},
		{"disabled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_SDK_DISABLED": "TRUE"}, false},
		{"a sampler, its ratio and a resource", map[string]string{
			"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318", "OTEL_TRACES_SAMPLER": "parentbased_traceidratio",
			"OTEL_TRACES_SAMPLER_ARG": "0.25", "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment.name=prod,team=a%20b",
			"OTEL_SERVICE_NAME": "onboard-eu", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
		}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(env(tt.vars))
			require.NoError(t, err)
			assert.Equal(t, tt.want, cfg.ExportTraces)
		})
	}
}

// Every bad tracing value is reported at once, naming its variable, and
// never quoting an endpoint (which may hold a secret).
func TestLoadConfig_TracingVariablesRejectBadValues(t *testing.T) {
	t.Parallel()
	_, err := LoadConfig(env(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT":        "collector:4317",
		"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "grpc://user:secret@collector",
		"OTEL_SDK_DISABLED":                  "yes",
		"OTEL_TRACES_SAMPLER":                "traceidratio",
		"OTEL_TRACES_SAMPLER_ARG":            "2",
		"OTEL_RESOURCE_ATTRIBUTES":           "team",
		"OTEL_EXPORTER_OTLP_PROTOCOL":        "grpc",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
	}))
	require.Error(t, err)
	for _, name := range []string{"OTEL_EXPORTER_OTLP_ENDPOINT:", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT:", "OTEL_SDK_DISABLED:",
		"OTEL_TRACES_SAMPLER_ARG:", "OTEL_RESOURCE_ATTRIBUTES:", "OTEL_EXPORTER_OTLP_PROTOCOL:",
		"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL:"} {
		assert.Contains(t, err.Error(), name)
	}
	assert.NotContains(t, err.Error(), "secret")

	_, err = LoadConfig(env(map[string]string{"OTEL_TRACES_SAMPLER": "jaeger_remote"}))
	assert.ErrorContains(t, err, "OTEL_TRACES_SAMPLER:")
}

// OTEL_TRUST_CLIENT_TRACEPARENT is false unless set to a true value; a
// value that is no bool stops the start.
func TestLoadConfig_TrustClientTraceparent(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		raw  string
		want bool
	}{{"", false}, {"false", false}, {"0", false}, {"true", true}, {"TRUE", true}, {" 1 ", true}} {
		cfg, err := LoadConfig(env(map[string]string{"OTEL_TRUST_CLIENT_TRACEPARENT": tt.raw}))
		require.NoError(t, err, "%q", tt.raw)
		assert.Equal(t, tt.want, cfg.TrustClientTraceparent, "%q", tt.raw)
	}
	for _, junk := range []string{"yes", "on", "trust", "2"} {
		_, err := LoadConfig(env(map[string]string{"OTEL_TRUST_CLIENT_TRACEPARENT": junk}))
		assert.ErrorContains(t, err, `OTEL_TRUST_CLIENT_TRACEPARENT: want true or false, got "`+junk+`"`)
	}
}

// A record logged with the context of a valid span carries its trace id
// beside the correlation id; one without, none.
func TestNewLogger_TraceID(t *testing.T) {
	t.Parallel()
	logger, buf := jsonLog(slog.LevelInfo)
	traceID, err := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	require.NoError(t, err)
	spanID, err := trace.SpanIDFromHex("00f067aa0ba902b7")
	require.NoError(t, err)
	ctx := app.WithCorrelationID(context.Background(), "c-1")
	logger.InfoContext(trace.ContextWithSpanContext(ctx, trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: traceID, SpanID: spanID, TraceFlags: trace.FlagsSampled,
	})), "traced")
	logger.InfoContext(ctx, "untraced")
	logger.With("handler", "h").WithGroup("g").InfoContext(trace.ContextWithRemoteSpanContext(ctx,
		trace.NewSpanContext(trace.SpanContextConfig{TraceID: traceID, SpanID: spanID})), "grouped")

	records := testenv.JSONRecords(t, buf.String())
	require.Len(t, records, 3)
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", records[0]["trace_id"])
	assert.Equal(t, "c-1", records[0]["correlation_id"])
	assert.NotContains(t, records[1], "trace_id")
	assert.Equal(t, "h", records[2]["handler"])
	assert.Equal(t, map[string]any{"correlation_id": "c-1", "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"}, records[2]["g"],
		"in a group, as the correlation id")
}
