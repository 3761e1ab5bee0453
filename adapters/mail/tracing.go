package mail

import (
	"context"
	"errors"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/telemetry"
)

// Traced is mailer with a span per email: "SMTPMailer.Send",
// "MailboxMailer.Send", "LogMailer.Send", or "Mailer.Send" for another
// mailer. The span holds the
// email's id, never its address, subject or body. A nil provider: mailer
// itself.
func Traced(mailer event.Mailer, provider trace.TracerProvider) event.Mailer {
	if provider == nil {
		return mailer
	}
	name := "Mailer.Send"
	switch mailer.(type) {
	case *SMTPMailer:
		name = "SMTPMailer.Send"
	case *MailboxMailer:
		name = "MailboxMailer.Send"
	case LogMailer:
		name = "LogMailer.Send"
	}
	return tracedMailer{mailer: mailer, tracer: telemetry.Tracer(provider), name: name}
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
		var smtpErr *SMTPError
		if errors.As(err, &smtpErr) {
			span.SetAttributes(attribute.String("onboard.smtp.step", smtpErr.Step),
				attribute.Int("onboard.smtp.code", smtpErr.Code))
		}
	}
	return err
}
