package telemetry

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// MessagingSystem is the messaging.system attribute of the spans of
// messages: Watermill carries them, whatever the transport.
var MessagingSystem = semconv.MessagingSystemKey.String("watermill")

// ContextOf is the message's context, continuing the trace its metadata
// carries when the context has no span of its own.
func ContextOf(propagator propagation.TextMapPropagator, msg *message.Message) context.Context {
	ctx := msg.Context()
	if trace.SpanContextFromContext(ctx).IsValid() {
		return ctx
	}
	return propagator.Extract(ctx, propagation.MapCarrier(msg.Metadata))
}

// TracePublisher publishes through pub with a span per message, named
// operation and the topic ("outbox publish events.UserRegistered"); the
// span is a child of the message's context, or of the trace its metadata
// carries, and its context replaces the traceparent in the metadata: the
// handlers' spans are its children. Without a tracer provider, no span:
// the span context of a message's context (a trusted caller's, see
// Tracing.HTTPRequests) is written into its metadata,
// and a traceparent already there is left as it is.
func TracePublisher(pub message.Publisher, operation string, tracing Tracing) message.Publisher {
	if tracing.TracerProvider == nil {
		return propagatingPublisher{Publisher: pub, propagator: tracing.Propagation()}
	}
	return tracingPublisher{Publisher: pub, operation: operation, tracer: tracing.Tracer(), propagator: tracing.Propagation()}
}

type propagatingPublisher struct {
	message.Publisher
	propagator propagation.TextMapPropagator
}

func (p propagatingPublisher) Publish(topic string, msgs ...*message.Message) error {
	for _, msg := range msgs {
		if ctx := msg.Context(); trace.SpanContextFromContext(ctx).IsValid() {
			p.propagator.Inject(ctx, propagation.MapCarrier(msg.Metadata))
		}
	}
	return p.Publisher.Publish(topic, msgs...)
}

type tracingPublisher struct {
	message.Publisher
	operation  string
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

func (p tracingPublisher) Publish(topic string, msgs ...*message.Message) error {
	spans := make([]trace.Span, len(msgs))
	for i, msg := range msgs {
		ctx, span := p.tracer.Start(ContextOf(p.propagator, msg), p.operation+" "+topic,
			trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(MessagingSystem, semconv.MessagingOperationTypeSend,
				semconv.MessagingDestinationName(topic), semconv.MessagingMessageID(msg.UUID)))
		p.propagator.Inject(ctx, propagation.MapCarrier(msg.Metadata))
		msg.SetContext(ctx)
		spans[i] = span
	}
	err := p.Publisher.Publish(topic, msgs...)
	for _, span := range spans {
		EndSpan(span, err)
	}
	return err
}

// attemptsKey holds, in a message's context, the number of attempts at it
// so far in this delivery.
type attemptsKey struct{}

// ContinueTrace is handler middleware that runs before the quick retries:
// it puts the trace the message's metadata carries (the W3C traceparent of
// the span that published it) into the message's context, so that the
// span of each attempt is a child of the publishing span, and, with spans,
// counts the attempts.
func (t Tracing) ContinueTrace(next message.HandlerFunc) message.HandlerFunc {
	propagator, spans := t.Propagation(), t.TracerProvider != nil
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := ContextOf(propagator, msg)
		if spans {
			ctx = context.WithValue(ctx, attemptsKey{}, new(int))
		}
		msg.SetContext(ctx)
		return next(msg)
	}
}

// TraceAttempts is handler middleware that makes a span of each attempt at
// a message, named for the handler ("handle SendWelcomeEmailOnUserRegistered"),
// with an error status when the attempt fails; the handler's own spans are
// its children. Without a tracer provider it does nothing.
func (t Tracing) TraceAttempts(next message.HandlerFunc) message.HandlerFunc {
	if t.TracerProvider == nil {
		return next
	}
	tracer := t.Tracer()
	return func(msg *message.Message) ([]*message.Message, error) {
		parent := msg.Context()
		handler := message.HandlerNameFromCtx(parent)
		attempt := 1
		if n, ok := parent.Value(attemptsKey{}).(*int); ok {
			*n++
			attempt = *n
		}
		ctx, span := tracer.Start(parent, "handle "+handler, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(MessagingSystem, semconv.MessagingOperationTypeProcess,
				semconv.MessagingConsumerGroupName(handler),
				semconv.MessagingDestinationName(message.SubscribeTopicFromCtx(parent)),
				semconv.MessagingMessageID(msg.UUID), attribute.Int("onboard.attempt", attempt)))
		// The next attempt starts from the publisher's span again.
		defer msg.SetContext(parent)
		msg.SetContext(ctx)
		produced, err := next(msg)
		EndSpan(span, err)
		return produced, err
	}
}
