package ports

import (
	"context"
	"net/textproto"
	"slices"

	"github.com/gin-gonic/gin"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"
)

// traceRequests is the API's first middleware. With a tracer provider,
// otelgin makes a span of each request, named by its method and route
// template ("POST /users", "GET /users/:id"), without the client's address
// or user agent. Without one, it only takes up an incoming traceparent,
// so that the request's log lines and the messages it publishes carry the
// caller's trace.
func (c HTTPConfig) traceRequests() gin.HandlerFunc {
	propagator := c.Propagator
	if propagator == nil {
		propagator = propagation.TraceContext{}
	}
	if c.TracerProvider == nil {
		// The propagator's headers, looked up as they are stored: a request
		// without any costs a map lookup or two.
		fields := slices.Clone(propagator.Fields())
		for i, field := range fields {
			fields[i] = textproto.CanonicalMIMEHeaderKey(field)
		}
		return func(gc *gin.Context) {
			if !slices.ContainsFunc(fields, func(field string) bool { return len(gc.Request.Header[field]) > 0 }) {
				return
			}
			ctx := propagator.Extract(gc.Request.Context(), propagation.HeaderCarrier(gc.Request.Header))
			if trace.SpanContextFromContext(ctx).IsValid() {
				gc.Request = gc.Request.WithContext(ctx)
			}
		}
	}
	return otelgin.Middleware("",
		otelgin.WithTracerProvider(privateTracerProvider{provider: c.TracerProvider}),
		otelgin.WithPropagators(propagator),
		otelgin.WithMeterProvider(metricnoop.NewMeterProvider()))
}

// privateAttributes name who sent a request: no span keeps them.
var privateAttributes = []attribute.Key{
	semconv.ClientAddressKey, semconv.NetworkPeerAddressKey, semconv.NetworkPeerPortKey, semconv.UserAgentOriginalKey,
}

// privateTracerProvider drops privateAttributes from the spans its tracers
// start.
type privateTracerProvider struct {
	embedded.TracerProvider
	provider trace.TracerProvider
}

func (p privateTracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return privateTracer{tracer: p.provider.Tracer(name, opts...)}
}

type privateTracer struct {
	embedded.Tracer
	tracer trace.Tracer
}

func (t privateTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	kept := slices.DeleteFunc(cfg.Attributes(), func(a attribute.KeyValue) bool {
		return slices.Contains(privateAttributes, a.Key)
	})
	opts = []trace.SpanStartOption{trace.WithAttributes(kept...), trace.WithSpanKind(cfg.SpanKind()),
		trace.WithLinks(cfg.Links()...)}
	if cfg.NewRoot() {
		opts = append(opts, trace.WithNewRoot())
	}
	if !cfg.Timestamp().IsZero() {
		opts = append(opts, trace.WithTimestamp(cfg.Timestamp()))
	}
	return t.tracer.Start(ctx, name, opts...)
}
