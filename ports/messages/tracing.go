package messages

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/adapters/transport"
)

// attemptsKey holds, in a message's context, the number of attempts at it
// so far in this delivery.
type attemptsKey struct{}

// continueTrace runs before the quick retries: it puts the trace the
// message's metadata carries (the W3C traceparent of the span that
// published it) into the message's context, so that the span of each
// attempt is a child of the publishing span, and, with spans, counts the
// attempts.
func (p port) continueTrace(next message.HandlerFunc) message.HandlerFunc {
	propagator, spans := p.cfg.Tracing.Propagation(), p.cfg.Tracing.TracerProvider != nil
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := transport.ContextOf(propagator, msg)
		if spans {
			ctx = context.WithValue(ctx, attemptsKey{}, new(int))
		}
		msg.SetContext(ctx)
		return next(msg)
	}
}

// traceAttempts makes a span of each attempt at a message, named for the
// handler ("handle SendWelcomeEmailOnUserRegistered"), with an error status
// when the attempt fails; the handler's own spans are its children.
// Without a tracer provider it does nothing.
func (p port) traceAttempts(next message.HandlerFunc) message.HandlerFunc {
	if p.cfg.Tracing.TracerProvider == nil {
		return next
	}
	tracer := p.cfg.Tracing.Tracer()
	return func(msg *message.Message) ([]*message.Message, error) {
		parent := msg.Context()
		handler := message.HandlerNameFromCtx(parent)
		attempt := 1
		if n, ok := parent.Value(attemptsKey{}).(*int); ok {
			*n++
			attempt = *n
		}
		ctx, span := tracer.Start(parent, "handle "+handler, trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(transport.MessagingSystem, semconv.MessagingOperationTypeProcess,
				semconv.MessagingConsumerGroupName(handler),
				semconv.MessagingDestinationName(message.SubscribeTopicFromCtx(parent)),
				semconv.MessagingMessageID(msg.UUID), attribute.Int("onboard.attempt", attempt)))
		// The next attempt starts from the publisher's span again.
		defer msg.SetContext(parent)
		msg.SetContext(ctx)
		produced, err := next(msg)
		transport.EndSpan(span, err)
		return produced, err
	}
}
