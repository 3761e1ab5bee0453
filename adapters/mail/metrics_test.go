package mail_test

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/testsmtp"
)

// A real SMTP conversation per case: accepted, refused for one recipient
// (451 at RCPT TO), refused for good (550), the server failing (451 at
// MAIL FROM); each failure counted with its class.
func TestMetrics_CountSendsByClass(t *testing.T) {
	server := testsmtp.Start(t)
	registry := prometheus.NewRegistry()
	metrics, err := mail.NewMetrics(registry)
	require.NoError(t, err)
	mailer := metrics.Counting(newTestSMTPMailer(t, server.URL()))
	ctx := sendCtx(t) // outside a handler: handler="none"; the service's tests show the handlers' names
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
`)))
	assert.Len(t, server.Messages(), 2)
}

func TestFailureClass(t *testing.T) {
	assert.Equal(t, mail.FailureOutage, mail.FailureClass(&mail.SMTPError{Step: "connect"}))
	assert.Equal(t, mail.FailureOutage, mail.FailureClass(&mail.SMTPError{Step: "MAIL FROM", Code: 421}))
	assert.Equal(t, mail.FailureTransient, mail.FailureClass(&mail.SMTPError{Step: "RCPT TO", Code: 452}))
	assert.Equal(t, mail.FailurePermanent, mail.FailureClass(&mail.SMTPError{Step: "RCPT TO", Code: 550}))
	assert.Equal(t, mail.FailureInterrupted, mail.FailureClass(context.Canceled))
}
