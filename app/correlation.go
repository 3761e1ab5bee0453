package app

import (
	"context"
	"log/slog"
)

type (
	correlationKey     struct{}
	clientRequestIDKey struct{}
	eventIDKey         struct{}
)

// WithCorrelationID returns a context carrying the correlation id of the
// request or message being handled.
func WithCorrelationID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, correlationKey{}, id)
}

// CorrelationID returns the context's correlation id, or "".
func CorrelationID(ctx context.Context) string {
	id, _ := ctx.Value(correlationKey{}).(string)
	return id
}

// WithClientRequestID returns a context carrying the id a client gave its
// request (its X-Request-ID), kept beside the correlation id, which the
// service makes itself: a client's id is neither unique nor trusted.
func WithClientRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, clientRequestIDKey{}, id)
}

// ClientRequestID returns the context's client request id, or "".
func ClientRequestID(ctx context.Context) string {
	id, _ := ctx.Value(clientRequestIDKey{}).(string)
	return id
}

// WithEventID returns a context carrying the id of the event being
// handled (its message's id), to which its sealed fields are bound.
func WithEventID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, eventIDKey{}, id)
}

// EventID returns the context's event id, or "".
func EventID(ctx context.Context) string {
	id, _ := ctx.Value(eventIDKey{}).(string)
	return id
}

// LogHandler adds the context's correlation id (and client request id) to
// every record logged with a context, so each line of a request or a
// handler can be tied together.
type LogHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := CorrelationID(ctx); id != "" {
		r.AddAttrs(slog.String("correlation_id", id))
	}
	if id := ClientRequestID(ctx); id != "" {
		r.AddAttrs(slog.String("client_request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h LogHandler) WithGroup(name string) slog.Handler {
	return LogHandler{h.Handler.WithGroup(name)}
}
