// Package telemetry is onboard's one place for spans and series: the
// scope its spans are made under, the Prometheus series it counts, and the
// decorators and middleware that make and count them around the parts the
// service wires (the API's Gin middleware, Watermill's publishers and
// handler middleware, the mailer, the points ledger, the users' store).
// The parts themselves import neither OpenTelemetry nor Prometheus: what
// only a part can see (a wait for a turn, a claim taken over, a ledger
// entry written) it tells a hook of its own, a plain func the service sets
// to one of Metrics' methods.
package telemetry

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// ScopeName is the instrumentation scope of onboard's own spans.
const ScopeName = "github.com/onboard/onboard"

// Tracer is provider's tracer of onboard's spans; a no-op one without a
// provider.
func Tracer(provider trace.TracerProvider) trace.Tracer {
	if provider == nil {
		provider = noop.NewTracerProvider()
	}
	return provider.Tracer(ScopeName)
}

// Tracing is how a part makes spans and carries their context in the
// metadata of the messages it publishes (the W3C traceparent).
type Tracing struct {
	// TracerProvider makes the spans; nil: none (a context that came in is
	// still carried on).
	TracerProvider trace.TracerProvider
	// Propagator writes and reads the span context in metadata; nil: the
	// W3C trace context.
	Propagator propagation.TextMapPropagator
}

// Tracer is the provider's tracer of onboard's spans, a no-op one without
// a provider.
func (t Tracing) Tracer() trace.Tracer { return Tracer(t.TracerProvider) }

// Propagation is the propagator, the W3C trace context by default.
func (t Tracing) Propagation() propagation.TextMapPropagator {
	if t.Propagator == nil {
		return propagation.TraceContext{}
	}
	return t.Propagator
}

// EndSpan ends span, with an error status when err is not nil. The
// project's errors name no address, name or secret, so the status may
// carry the message.
func EndSpan(span trace.Span, err error) {
	if err != nil && span.IsRecording() {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
	}
	span.End()
}

// errorType is the error.type attribute: the cancellations by name, any
// other error "_OTHER".
func errorType(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "context.Canceled"
	case errors.Is(err, context.DeadlineExceeded):
		return "context.DeadlineExceeded"
	}
	return semconv.ErrorTypeOther.Value.AsString()
}
