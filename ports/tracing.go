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
// or user agent. A client's traceparent is its parent only when
// TrustClientTraceparent says so; otherwise the request starts a trace of
// its own, with its own sampling decision, linked to the client's span
// (see privateTracer). Without a provider, a trusted client's traceparent
// is taken up, so that the request's log lines and the messages it
// publishes carry the caller's trace; an untrusted one is ignored.
func (c HTTPConfig) traceRequests() gin.HandlerFunc {
	propagator := c.Propagator
	if propagator == nil {
		propagator = propagation.TraceContext{}
	}
	if c.TracerProvider == nil {
		if !c.TrustClientTraceparent {
			return func(*gin.Context) {}
		}
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
	provider := privateTracerProvider{provider: c.TracerProvider, trustClient: c.TrustClientTraceparent}
	return otelgin.Middleware("",
		otelgin.WithTracerProvider(provider),
		otelgin.WithPropagators(propagator),
		otelgin.WithMeterProvider(metricnoop.NewMeterProvider()))
}

// privateAttributes name who sent a request: no span keeps them.
var privateAttributes = []attribute.Key{
	semconv.ClientAddressKey, semconv.NetworkPeerAddressKey, semconv.NetworkPeerPortKey, semconv.UserAgentOriginalKey,
}

// privateTracerProvider drops privateAttributes from the spans its tracers
// start. Unless trustClient, a span whose parent is a remote span context
// (the client's, which otelgin extracted from the request's headers) is
// started as a root instead, linked to the client's span: the client's
// trace id, sampling flag and tracestate are not taken up, and the link
// keeps no tracestate.
type privateTracerProvider struct {
	embedded.TracerProvider
	provider    trace.TracerProvider
	trustClient bool
}

func (p privateTracerProvider) Tracer(name string, opts ...trace.TracerOption) trace.Tracer {
	return privateTracer{tracer: p.provider.Tracer(name, opts...), trustClient: p.trustClient}
}

type privateTracer struct {
	embedded.Tracer
	tracer      trace.Tracer
	trustClient bool
}

func (t privateTracer) Start(ctx context.Context, name string, opts ...trace.SpanStartOption) (context.Context, trace.Span) {
	cfg := trace.NewSpanStartConfig(opts...)
	kept := slices.DeleteFunc(cfg.Attributes(), func(a attribute.KeyValue) bool {
		return slices.Contains(privateAttributes, a.Key)
	})
	links := cfg.Links()
	newRoot := cfg.NewRoot()
	if client := trace.SpanContextFromContext(ctx); !t.trustClient && client.IsRemote() {
		newRoot = true
		if client.IsValid() {
			links = append(links, trace.Link{SpanContext: client.WithTraceState(trace.TraceState{})})
		}
	}
	opts = []trace.SpanStartOption{trace.WithAttributes(kept...), trace.WithSpanKind(cfg.SpanKind()),
		trace.WithLinks(links...)}
	if newRoot {
		opts = append(opts, trace.WithNewRoot())
	}
	if !cfg.Timestamp().IsZero() {
		opts = append(opts, trace.WithTimestamp(cfg.Timestamp()))
	}
	return t.tracer.Start(ctx, name, opts...)
}
