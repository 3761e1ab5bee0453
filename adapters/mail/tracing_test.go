package mail_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/telemetry"
	"github.com/onboard/onboard/internal/testsmtp"
)

// Each send over SMTP is a span holding the email's id, never its address,
// subject or body; a refused one has an error status with the SMTP step
// and code.
func TestTraced_SpanPerSMTPSend(t *testing.T) {
	server := testsmtp.Start(t)
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	mailer := mail.Traced(newTestSMTPMailer(t, server.URL()), provider)
	ctx, parent := provider.Tracer("test").Start(sendCtx(t), "handle")

	sent := event.Mail{ID: "welcome-1", To: "ada@example.com", Subject: "Welcome Ada", Body: "Hello Ada Lovelace"}
	require.NoError(t, mailer.Send(ctx, sent))
	refused := event.Mail{ID: "welcome-2", To: "eve@" + testsmtp.RejectedDomain, Subject: "Welcome", Body: "Hello"}
	require.Error(t, mailer.Send(ctx, refused))
	parent.End()

	spans := recorder.Ended()
	require.Len(t, spans, 3)
	for i, span := range spans[:2] {
		assert.Equal(t, "SMTPMailer.Send", span.Name())
		assert.Equal(t, parent.SpanContext().SpanID(), span.Parent().SpanID())
		assert.Contains(t, span.Attributes(), attribute.String("onboard.mail.id", []string{"welcome-1", "welcome-2"}[i]))
		for _, attr := range span.Attributes() {
			for _, private := range []string{"ada@example.com", "eve@", "Welcome", "Hello"} {
				assert.NotContains(t, attr.Value.String(), private)
			}
		}
	}
	assert.Equal(t, codes.Unset, spans[0].Status().Code)
	assert.Equal(t, codes.Error, spans[1].Status().Code)
	assert.NotContains(t, spans[1].Status().Description, "eve@")
	assert.Contains(t, spans[1].Attributes(), attribute.String("onboard.smtp.step", "RCPT TO"))
	assert.Contains(t, spans[1].Attributes(), attribute.Int("onboard.smtp.code", 550))
}

// Without a provider the mailer is returned as it is.
func TestTraced_WithoutProvider(t *testing.T) {
	logMailer := mail.LogMailer{From: mailerTestFrom}
	assert.Equal(t, event.Mailer(logMailer), mail.Traced(logMailer, nil))
}

// Each mailer's span is named by its kind; the spans' scope is onboard's.
func TestTraced_NamesTheSpanByTheMailer(t *testing.T) {
	mailbox, err := mail.NewMailboxMailer(t.TempDir(), mailerTestFrom, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	for want, mailer := range map[string]event.Mailer{
		"MailboxMailer.Send": mailbox,
		"LogMailer.Send":     mail.LogMailer{From: mailerTestFrom, Logger: slog.New(slog.DiscardHandler)},
	} {
		recorder := tracetest.NewSpanRecorder()
		provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
		require.NoError(t, mail.Traced(mailer, provider).Send(sendCtx(t), event.Mail{ID: "welcome-1", To: "ada@example.com"}))
		require.Len(t, recorder.Ended(), 1)
		assert.Equal(t, want, recorder.Ended()[0].Name())
		assert.Equal(t, telemetry.ScopeName, recorder.Ended()[0].InstrumentationScope().Name)
	}
}
