package telemetry

import (
	"context"
	"net/http"
	"net/textproto"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/github.com/gin-gonic/gin/otelgin"
	"go.opentelemetry.io/otel/attribute"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/embedded"

	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/ports"
)

// HTTPRequests is the API's first middleware. With a tracer provider,
// otelgin makes a span of each request, named by its method and route
// template ("POST /users", "GET /users/:id"), without the client's address
// or user agent. A client's traceparent is its parent only when
// trustClient says so; otherwise the request starts a trace of
// its own, with its own sampling decision, linked to the client's span
// (see privateTracer). Without a provider, a trusted client's traceparent
// is taken up, so that the request's log lines and the messages it
// publishes carry the caller's trace; an untrusted one is ignored.
func (t Tracing) HTTPRequests(trustClient bool) gin.HandlerFunc {
	propagator := t.Propagation()
	if t.TracerProvider == nil {
		if !trustClient {
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
	provider := privateTracerProvider{provider: t.TracerProvider, trustClient: trustClient}
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

// httpSeries are the API's series. Routes are labelled by their template
// (/users/:id), never by a path, so that ids never become labels.
type httpSeries struct {
	requests      *prometheus.CounterVec   // route, method, status
	durations     *prometheus.HistogramVec // route, method
	registrations *prometheus.CounterVec   // outcome
	overloaded    *prometheus.CounterVec   // route, method
}

// UnmatchedRoute is the route label of a request no route matched (404,
// 405).
const UnmatchedRoute = "unmatched"

// Registration outcomes, the outcome label of onboard_registrations_total.
const (
	RegistrationCreated  = "created"
	RegistrationRepeated = "idempotent-repeat"
	RegistrationTaken    = "email-taken"
	RegistrationInvalid  = "invalid"
	RegistrationKeyReuse = "idempotency-key-reused"
	RegistrationLimited  = "rate-limited"
	RegistrationOverload = "overloaded"
	RegistrationFailed   = "error"
)

func newHTTPSeries() httpSeries {
	return httpSeries{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_http_requests_total",
			Help: "HTTP requests answered, by route template (unmatched: no route), method and status.",
		}, []string{"route", "method", "status"}),
		durations: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "onboard_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route template and method.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 15},
		}, []string{"route", "method"}),
		registrations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_registrations_total",
			Help: "Answers to POST /users by outcome: created, idempotent-repeat, email-taken, invalid, " +
				"idempotency-key-reused, rate-limited, overloaded, error.",
		}, []string{"outcome"}),
		overloaded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "onboard_http_overloaded_total",
			Help: "Requests answered 503 overloaded (no turn to hash a password in time), by route template and method.",
		}, []string{"route", "method"}),
	}
}

// register adds the series to reg, each registration outcome at 0.
func (m httpSeries) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{m.requests, m.durations, m.registrations, m.overloaded} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	for _, outcome := range []string{RegistrationCreated, RegistrationRepeated, RegistrationTaken, RegistrationInvalid,
		RegistrationKeyReuse, RegistrationLimited, RegistrationOverload, RegistrationFailed} {
		m.registrations.WithLabelValues(outcome)
	}
	m.overloaded.WithLabelValues("/users", http.MethodPost)
	return nil
}

// HTTPRequests is the API's middleware that counts and times every
// request, after the others have answered it; on a nil *Metrics it does
// nothing.
func (m *Metrics) HTTPRequests() gin.HandlerFunc {
	if m == nil {
		return func(*gin.Context) {}
	}
	return m.http.observe
}

func (m httpSeries) observe(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = UnmatchedRoute
	}
	method := methodLabel(c.Request.Method)
	status := c.Writer.Status()
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.durations.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
	code := c.GetString(ports.ErrorCodeKey)
	if code == ports.CodeOverloaded {
		m.overloaded.WithLabelValues(route, method).Inc()
	}
	if route == "/users" && method == http.MethodPost {
		m.registrations.WithLabelValues(registrationOutcome(status, code, c.GetBool(ports.RegistrationRepeatKey))).Inc()
	}
}

// registrationOutcome names the answer to a POST /users.
func registrationOutcome(status int, code string, repeat bool) string {
	switch {
	case status == http.StatusCreated && repeat:
		return RegistrationRepeated
	case status == http.StatusCreated:
		return RegistrationCreated
	case code == domain.ErrEmailTaken.Code:
		return RegistrationTaken
	case code == domain.ErrIdempotencyKeyReused.Code:
		return RegistrationKeyReuse
	case status == http.StatusTooManyRequests:
		return RegistrationLimited
	case code == ports.CodeOverloaded:
		return RegistrationOverload
	case status >= 400 && status < 500:
		return RegistrationInvalid
	}
	return RegistrationFailed
}

// methodLabel keeps the method label to the methods HTTP defines, so that
// a client cannot make a label of its own.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return method
	}
	return "other"
}
