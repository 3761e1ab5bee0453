package telemetry_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/telemetry"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testsmtp"
)

// A real SMTP conversation per case: accepted, refused for one recipient
// (451 at RCPT TO), refused for good (550), the server failing (451 at
// MAIL FROM); each failure counted with its class.
func TestMetrics_CountSendsByClass(t *testing.T) {
	server := testsmtp.Start(t)
	metrics, err := telemetry.NewMetrics()
	require.NoError(t, err)
	registry := metrics.Registry()
	mailer := metrics.CountSends(smtpMailer(t, server))
	ctx := testenv.Context(t) // outside a handler: handler="none"; the service's tests show the handlers' names
	send := func(to string) error {
		return mailer.Send(ctx, event.Mail{To: to, Subject: "Welcome", Body: "welcome to onboard\n"})
	}

	require.NoError(t, send("ada@example.com"))
	server.Greylist("grey@example.com")
	require.Error(t, send("grey@example.com"))
	require.Error(t, send("nobody@"+testsmtp.RejectedDomain))
	server.SetFailing(true)
	require.Error(t, send("ada@example.com"))
	server.SetFailing(false)
	require.NoError(t, send("bob@example.com"))

	require.NoError(t, testutil.GatherAndCompare(registry, strings.NewReader(`
# HELP onboard_emails_failed_total Failed sends of an email, by handler and class: outage, transient, permanent or interrupted.
# TYPE onboard_emails_failed_total counter
onboard_emails_failed_total{class="outage",handler="none"} 1
onboard_emails_failed_total{class="permanent",handler="none"} 1
onboard_emails_failed_total{class="transient",handler="none"} 1
# HELP onboard_emails_sent_total Emails the mail server accepted (or the log took), by handler.
# TYPE onboard_emails_sent_total counter
onboard_emails_sent_total{handler="none"} 2
`), "onboard_emails_failed_total", "onboard_emails_sent_total"))
	assert.Len(t, server.Messages(), 2)
}

func TestFailureClass(t *testing.T) {
	assert.Equal(t, telemetry.FailureOutage, telemetry.FailureClass(&mail.SMTPError{Step: "connect"}))
	assert.Equal(t, telemetry.FailureOutage, telemetry.FailureClass(&mail.SMTPError{Step: "MAIL FROM", Code: 421}))
	assert.Equal(t, telemetry.FailureTransient, telemetry.FailureClass(&mail.SMTPError{Step: "RCPT TO", Code: 452}))
	assert.Equal(t, telemetry.FailurePermanent, telemetry.FailureClass(&mail.SMTPError{Step: "RCPT TO", Code: 550}))
	assert.Equal(t, telemetry.FailureInterrupted, telemetry.FailureClass(context.Canceled))
}

// Each send over SMTP is a span holding the email's id, never its address,
// subject or body; a refused one has an error status with the SMTP step
// and code.
func TestTracingMailer_SpanPerSMTPSend(t *testing.T) {
	server := testsmtp.Start(t)
	recorder := tracetest.NewSpanRecorder()
	provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
	mailer := telemetry.Tracing{TracerProvider: provider}.Mailer(smtpMailer(t, server))
	ctx, parent := provider.Tracer("test").Start(testenv.Context(t), "handle")

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
func TestTracingMailer_WithoutProvider(t *testing.T) {
	logMailer := mail.LogMailer{From: testFrom}
	assert.Equal(t, event.Mailer(logMailer), telemetry.Tracing{}.Mailer(logMailer))
}

// Each mailer's span is named by its kind; the spans' scope is onboard's.
func TestTracingMailer_NamesTheSpanByTheMailer(t *testing.T) {
	mailbox, err := mail.NewMailboxMailer(t.TempDir(), testFrom, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	for want, mailer := range map[string]event.Mailer{
		"MailboxMailer.Send": mailbox,
		"LogMailer.Send":     mail.LogMailer{From: testFrom, Logger: slog.New(slog.DiscardHandler)},
	} {
		recorder := tracetest.NewSpanRecorder()
		provider := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
		require.NoError(t, telemetry.Tracing{TracerProvider: provider}.Mailer(mailer).Send(testenv.Context(t), event.Mail{ID: "welcome-1", To: "ada@example.com"}))
		require.Len(t, recorder.Ended(), 1)
		assert.Equal(t, want, recorder.Ended()[0].Name())
		assert.Equal(t, telemetry.ScopeName, recorder.Ended()[0].InstrumentationScope().Name)
	}
}

// testFrom is the sender of the tests' emails.
const testFrom = "no-reply@onboard.test"

// smtpMailer is the product's SMTP mailer, sending through server.
func smtpMailer(t *testing.T, server *testsmtp.Server) *mail.SMTPMailer {
	t.Helper()
	mailer, err := mail.NewSMTPMailer(server.URL(), testFrom)
	require.NoError(t, err)
	return mailer
}
