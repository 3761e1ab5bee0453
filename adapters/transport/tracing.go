package transport

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/internal/telemetry"
)

// MessagingSystem is the messaging.system attribute of the spans of
// messages: Watermill carries them, whatever the transport.
var MessagingSystem = semconv.MessagingSystemKey.String("watermill")

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
func (t Tracing) Tracer() trace.Tracer { return telemetry.Tracer(t.TracerProvider) }

// Propagation is the propagator, the W3C trace context by default.
func (t Tracing) Propagation() propagation.TextMapPropagator {
	if t.Propagator == nil {
		return propagation.TraceContext{}
	}
	return t.Propagator
}

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
// ports.HTTPConfig.TrustClientTraceparent) is written into its metadata,
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
