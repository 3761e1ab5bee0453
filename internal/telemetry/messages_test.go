package telemetry_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/internal/telemetry"
)

// callerTrace is a traceparent of a trace begun elsewhere.
const callerTrace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func recorded(t *testing.T) (telemetry.Tracing, *tracetest.SpanRecorder) {
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	t.Cleanup(func() { _ = provider.Shutdown(context.Background()) })
	return telemetry.Tracing{TracerProvider: provider}, recorder
}

// publishOne publishes msg through pub on a gochannel and returns what a
// subscriber receives.
func publishOne(t *testing.T, wrap func(message.Publisher) message.Publisher, msg *message.Message) *message.Message {
	t.Helper()
	pubSub := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1}, nil)
	t.Cleanup(func() { _ = pubSub.Close() })
	received, err := pubSub.Subscribe(context.Background(), "events.UserRegistered")
	require.NoError(t, err)
	require.NoError(t, wrap(pubSub).Publish("events.UserRegistered", msg))
	got := <-received
	got.Ack()
	return got
}

// A publish in a span's context is a child span, whose traceparent the
// message carries to its handlers.
func TestTracePublisher_ChildOfTheContextsSpan(t *testing.T) {
	tracing, recorder := recorded(t)
	ctx, parent := tracing.Tracer().Start(context.Background(), "transaction")
	msg := message.NewMessage("m-1", []byte(`{}`))
	msg.SetContext(ctx)

	got := publishOne(t, func(p message.Publisher) message.Publisher {
		return telemetry.TracePublisher(p, "outbox publish", tracing)
	}, msg)
	parent.End()

	spans := recorder.Ended()
	require.Len(t, spans, 2)
	publish := spans[0]
	assert.Equal(t, "outbox publish events.UserRegistered", publish.Name())
	assert.Equal(t, trace.SpanKindProducer, publish.SpanKind())
	assert.Equal(t, parent.SpanContext().SpanID(), publish.Parent().SpanID())
	carried := trace.SpanContextFromContext(telemetry.ContextOf(propagation.TraceContext{}, got))
	assert.Equal(t, publish.SpanContext().TraceID(), carried.TraceID())
	assert.Equal(t, publish.SpanContext().SpanID(), carried.SpanID(), "the handlers' parent is the publish")
}

// A message republished outside any span (the forwarder's) continues the
// trace its metadata carries.
func TestTracePublisher_ContinuesTheTraceOfTheMetadata(t *testing.T) {
	tracing, recorder := recorded(t)
	msg := message.NewMessage("m-1", []byte(`{}`))
	msg.Metadata.Set("traceparent", callerTrace)

	got := publishOne(t, func(p message.Publisher) message.Publisher {
		return telemetry.TracePublisher(p, "forward", tracing)
	}, msg)

	spans := recorder.Ended()
	require.Len(t, spans, 1)
	assert.Equal(t, "forward events.UserRegistered", spans[0].Name())
	assert.Equal(t, "4bf92f3577b34da6a3ce929d0e0e4736", spans[0].SpanContext().TraceID().String())
	assert.Equal(t, "00f067aa0ba902b7", spans[0].Parent().SpanID().String())
	assert.True(t, spans[0].Parent().IsRemote())
	assert.NotEqual(t, callerTrace, got.Metadata.Get("traceparent"), "the forward is the handlers' parent")
}

// Without a tracer provider no span is made, and the traceparent passes as it came.
func TestTracePublisher_WithoutProviderCarriesTheTraceOn(t *testing.T) {
	msg := message.NewMessage("m-1", []byte(`{}`))
	msg.Metadata.Set("traceparent", callerTrace)
	got := publishOne(t, func(p message.Publisher) message.Publisher {
		return telemetry.TracePublisher(p, "forward", telemetry.Tracing{})
	}, msg)
	assert.Equal(t, callerTrace, got.Metadata.Get("traceparent"))

	untraced := publishOne(t, func(p message.Publisher) message.Publisher {
		return telemetry.TracePublisher(p, "forward", telemetry.Tracing{})
	}, message.NewMessage("m-2", []byte(`{}`)))
	assert.Empty(t, untraced.Metadata.Get("traceparent"), "no trace, no traceparent")
}

// A failed publish is a span with an error status.
func TestTracePublisher_FailedPublish(t *testing.T) {
	tracing, recorder := recorded(t)
	pubSub := gochannel.NewGoChannel(gochannel.Config{}, nil)
	require.NoError(t, pubSub.Close())
	err := telemetry.TracePublisher(pubSub, "forward", tracing).Publish("events.UserRegistered", message.NewMessage("m-1", nil))
	require.Error(t, err)
	spans := recorder.Ended()
	require.Len(t, spans, 1)
	assert.Equal(t, codes.Error, spans[0].Status().Code)
}
