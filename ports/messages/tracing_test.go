package messages_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/telemetry"
	"github.com/onboard/onboard/ports/messages"
)

// flakyHandler fails its first attempt with an outage, then succeeds; it
// keeps the span of each attempt's context.
type flakyHandler struct {
	mu    sync.Mutex
	spans []trace.SpanContext
}

func (h *flakyHandler) handle(ctx context.Context, _ *domain.UserRegistered) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.spans = append(h.spans, trace.SpanContextFromContext(ctx))
	if len(h.spans) == 1 {
		return outage("database blip")
	}
	return nil
}

// runTracedRouter runs the service's router on gochannel with the handler,
// its spans recorded.
func runTracedRouter(t *testing.T, tracing telemetry.Tracing, handler cqrs.EventHandler) *transport.Transport {
	t.Helper()
	tr, err := transport.NewTransport(transport.Config{Kind: transport.KindGoChannel})
	require.NoError(t, err)
	t.Cleanup(func() { _ = tr.Close() })
	retries, err := transport.NewRetryQueue(transport.RetryQueueConfig{DB: sharedDB(t), Publisher: tr.Publisher})
	require.NoError(t, err)
	stopping, stop := context.WithCancel(context.Background())
	router, err := messages.NewRouter(messages.RouterConfig{
		Transport: tr, Retries: retries, Users: everyUser{}, DeploymentID: "test-deployment", Events: domain.Events,
		Stopping: stopping, Logger: slog.New(slog.DiscardHandler), Tracing: tracing,
		Retry: messages.RetryPolicy{InitialInterval: time.Millisecond, MaxInterval: 5 * time.Millisecond},
	}, []cqrs.EventHandler{handler}, nil)
	require.NoError(t, err)
	runRouter(t, router, stop)
	return tr
}

// Each attempt at a message is a span named for the handler, a child of
// the publisher's span (not of the attempt before), with an error status
// when it fails; the handler runs in its attempt's span.
func TestRouterTracing_OneSpanPerAttempt(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	tracing := telemetry.Tracing{TracerProvider: provider}
	flaky := &flakyHandler{}
	tr := runTracedRouter(t, tracing, cqrs.NewEventHandler("FlakyOnUserRegistered", flaky.handle))

	msg, err := transport.NewMarshaler(domain.Events).Marshal(&domain.UserRegistered{UserID: "0190f5c4-7b9e-7000-8000-000000000001"})
	require.NoError(t, err)
	// gochannel's publish returns once the handler acked the message.
	publisher := telemetry.TracePublisher(transport.StampOrigin(tr.Publisher, "test-deployment"), "forward", tracing)
	require.NoError(t, publisher.Publish(transport.EventTopic("UserRegistered"), msg))

	var publish sdktrace.ReadOnlySpan
	var attempts []sdktrace.ReadOnlySpan
	for _, span := range recorder.Ended() {
		switch span.Name() {
		case "forward events.UserRegistered":
			publish = span
		case "handle FlakyOnUserRegistered":
			attempts = append(attempts, span)
		}
	}
	require.NotNil(t, publish)
	require.Len(t, attempts, 2)
	for i, attempt := range attempts {
		assert.Equal(t, trace.SpanKindConsumer, attempt.SpanKind())
		assert.Equal(t, publish.SpanContext().SpanID(), attempt.Parent().SpanID(), "attempt %d", i+1)
		assert.Contains(t, attempt.Attributes(), attribute.Int("onboard.attempt", i+1))
		assert.Equal(t, attempt.SpanContext(), flaky.spans[i], "the handler runs in its attempt's span")
	}
	assert.Equal(t, codes.Error, attempts[0].Status().Code)
	assert.Equal(t, "database blip", attempts[0].Status().Description)
	assert.Equal(t, codes.Unset, attempts[1].Status().Code)
}

// A poisoned message stays in its trace: the copy kept
// for operators is published under a "poison publish" span, whose context
// it carries, so that a requeue continues the same trace.
func TestRouterTracing_PoisonPublishIsInTheTrace(t *testing.T) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	tracing := telemetry.Tracing{TracerProvider: provider}
	tr := runTracedRouter(t, tracing, cqrs.NewEventHandler("BrokenOnUserRegistered",
		func(context.Context, *domain.UserRegistered) error { return errors.New("a bug") }))

	msg, err := transport.NewMarshaler(domain.Events).Marshal(&domain.UserRegistered{UserID: "0190f5c4-7b9e-7000-8000-000000000001"})
	require.NoError(t, err)
	// gochannel's publish returns once the handler acked the message.
	publisher := telemetry.TracePublisher(transport.StampOrigin(tr.Publisher, "test-deployment"), "forward", tracing)
	require.NoError(t, publisher.Publish(transport.EventTopic("UserRegistered"), msg))

	spans := map[string]sdktrace.ReadOnlySpan{}
	for _, span := range recorder.Ended() {
		spans[span.Name()] = span
	}
	forward, poison := spans["forward events.UserRegistered"], spans["poison publish "+transport.PoisonTopic]
	require.NotNil(t, forward)
	require.NotNil(t, poison, "a span of the poison publish")
	assert.Equal(t, forward.SpanContext().TraceID(), poison.SpanContext().TraceID())
	assert.Equal(t, trace.SpanKindProducer, poison.SpanKind())
}
