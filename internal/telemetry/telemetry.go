// Package telemetry owns what onboard's own instrumentation is named by:
// the scope of its spans, one for every part that makes them.
package telemetry

import (
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
