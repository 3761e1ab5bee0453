package telemetry

import (
	"context"
	"errors"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/event"
)

// Failure classes of a send, the class label of onboard_emails_failed_total.
const (
	// FailureOutage: the server could not be reached or refused every
	// message alike (connect, 421, a refused sender); the message is held
	// and redelivered.
	FailureOutage = "outage"
	// FailureTransient: a 4xx to this message alone (greylisting, a full
	// mailbox); it waits in the retry queue.
	FailureTransient = "transient"
	// FailurePermanent: a 5xx, or an email that can never be sent.
	FailurePermanent = "permanent"
	// FailureInterrupted: the send was canceled, by a stop.
	FailureInterrupted = "interrupted"
)

// CountSends returns mailer counting its sends, by the handler that sends
// (the message's handler, "none" outside one) and, for a failure, its
// class.
func (m *Metrics) CountSends(mailer event.Mailer) event.Mailer {
	if m == nil {
		return mailer
	}
	return countingMailer{Mailer: mailer, metrics: m}
}

type countingMailer struct {
	event.Mailer
	metrics *Metrics
}

func (c countingMailer) Send(ctx context.Context, msg event.Mail) error {
	err := c.Mailer.Send(ctx, msg)
	handler := message.HandlerNameFromCtx(ctx)
	if handler == "" {
		handler = "none"
	}
	if err == nil {
		c.metrics.emailsSent.WithLabelValues(handler).Inc()
	} else {
		c.metrics.emailsFailed.WithLabelValues(handler, FailureClass(err)).Inc()
	}
	return err
}

// FailureClass is the class of a failed send.
func FailureClass(err error) string {
	var classified app.ClassifiedError
	switch {
	case errors.As(err, &classified) && classified.Failure() == app.FailureOutage:
		if errors.Is(err, context.Canceled) {
			return FailureInterrupted
		}
		return FailureOutage
	case errors.As(err, &classified) && classified.Failure() == app.FailureMessage:
		return FailureTransient
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return FailureInterrupted
	}
	return FailurePermanent
}

// Mailer is mailer with a span per email: "SMTPMailer.Send",
// "MailboxMailer.Send", "LogMailer.Send", or "Mailer.Send" for another
// mailer. The span holds the email's id, never its address, subject or
// body. Without a provider: mailer itself.
func (t Tracing) Mailer(mailer event.Mailer) event.Mailer {
	if t.TracerProvider == nil {
		return mailer
	}
	name := "Mailer.Send"
	switch mailer.(type) {
	case *mail.SMTPMailer:
		name = "SMTPMailer.Send"
	case *mail.MailboxMailer:
		name = "MailboxMailer.Send"
	case mail.LogMailer:
		name = "LogMailer.Send"
	}
	return tracedMailer{mailer: mailer, tracer: t.Tracer(), name: name}
}

type tracedMailer struct {
	mailer event.Mailer
	tracer trace.Tracer
	name   string
}

func (m tracedMailer) Send(ctx context.Context, msg event.Mail) error {
	ctx, span := m.tracer.Start(ctx, m.name, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("onboard.mail.id", msg.ID)))
	defer span.End()
	err := m.mailer.Send(ctx, msg)
	if err != nil {
		span.SetStatus(codes.Error, err.Error()) // the mailer's errors never quote an address
		var smtpErr *mail.SMTPError
		if errors.As(err, &smtpErr) {
			span.SetAttributes(attribute.String("onboard.smtp.step", smtpErr.Step),
				attribute.Int("onboard.smtp.code", smtpErr.Code))
		}
	}
	return err
}
