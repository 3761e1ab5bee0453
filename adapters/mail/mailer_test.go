package mail_test

import (
	"context"
	"errors"
	"fmt"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/testsmtp"
)

const mailerTestFrom = "no-reply@onboard.test"

func newTestSMTPMailer(t *testing.T, rawURL string) *mail.SMTPMailer {
	t.Helper()
	mailer, err := mail.NewSMTPMailer(rawURL, mailerTestFrom)
	require.NoError(t, err)
	return mailer
}

func sendCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// addressOf parses a header holding exactly one address.
func addressOf(t *testing.T, header string) string {
	t.Helper()
	addr, err := netmail.ParseAddress(header)
	require.NoError(t, err, "header %q is not one address", header)
	return addr.Address
}

func TestSMTPMailer_SendsOneMessage(t *testing.T) {
	tests := []struct {
		name string
		mail event.Mail
	}{
		{
			name: "plain ASCII",
			mail: event.Mail{
				To:      "Ada.Lovelace@Example.com",
				Subject: "Welcome to onboard",
				Body:    "Hello Ada Lovelace,\n\nwelcome to onboard! Your account is ready.\n",
			},
		},
		{
			name: "non-ASCII subject and body",
			mail: event.Mail{
				To:      "zoe@example.org",
				Subject: "Willkommen, Zoë 🚀",
				Body:    "Hello Zoë Ørsted 日本,\n\nwelcome to onboard!\n",
			},
		},
		{
			name: "long body line",
			mail: event.Mail{
				To:      "grace@example.net",
				Subject: "Welcome",
				Body:    "Hello " + strings.Repeat("Grace Hopper ", 40) + "\n",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			server := testsmtp.Start(t)
			mailer := newTestSMTPMailer(t, server.URL())

			require.NoError(t, mailer.Send(sendCtx(t), tt.mail))

			messages := server.Messages()
			require.Len(t, messages, 1)
			msg := messages[0]
			assert.Equal(t, mailerTestFrom, msg.From, "envelope sender is MAIL_FROM")
			assert.Equal(t, []string{tt.mail.To}, msg.To, "one envelope recipient, as given")
			assert.Equal(t, 1, server.CountTo(strings.ToUpper(tt.mail.To)), "CountTo ignores case")

			from, err := msg.Header("From")
			require.NoError(t, err)
			assert.Equal(t, mailerTestFrom, addressOf(t, from))
			to, err := msg.Header("To")
			require.NoError(t, err)
			assert.Equal(t, tt.mail.To, addressOf(t, to))
			subject, err := msg.Header("Subject")
			require.NoError(t, err)
			assert.Equal(t, tt.mail.Subject, subject)
			date, err := msg.Header("Date")
			require.NoError(t, err)
			assert.NotEmpty(t, date, "RFC 5322 requires a Date header")

			text, err := msg.Text()
			require.NoError(t, err)
			assert.Equal(t, strings.TrimRight(tt.mail.Body, "\n"), strings.TrimRight(text, "\n"))
		})
	}
}

func TestSMTPMailer_ReusesItsConnection(t *testing.T) {
	server := testsmtp.Start(t)
	mailer := newTestSMTPMailer(t, server.URL())
	t.Cleanup(func() { _ = mailer.Close() })
	recipients := []string{"a@example.com", "B@Example.com", "c@example.com"}

	for _, to := range recipients {
		require.NoError(t, mailer.Send(sendCtx(t), event.Mail{To: to, Subject: "Welcome", Body: "Hello " + to}))
	}

	messages := server.Messages()
	require.Len(t, messages, len(recipients))
	for i, to := range recipients {
		assert.Equal(t, []string{to}, messages[i].To)
		text, err := messages[i].Text()
		require.NoError(t, err)
		assert.Contains(t, text, "Hello "+to)
		assert.Equal(t, 1, server.CountTo(to))
	}
	assert.Equal(t, 1, server.Conversations(), "sends one after the other share one connection")
}

func TestSMTPMailer_ServerClosedIdleConnection(t *testing.T) {
	server := testsmtp.Start(t)
	mailer := newTestSMTPMailer(t, server.URL())
	t.Cleanup(func() { _ = mailer.Close() })
	welcome := event.Mail{To: "ada@example.com", Subject: "Welcome", Body: "Hello Ada"}
	require.NoError(t, mailer.Send(sendCtx(t), welcome))

	server.DropConnections()
	require.NoError(t, mailer.Send(sendCtx(t), event.Mail{To: "bob@example.com", Subject: "Welcome", Body: "Hello Bob"}),
		"the send after a dropped idle connection dials again")

	assert.Equal(t, 1, server.CountTo("ada@example.com"))
	assert.Equal(t, 1, server.CountTo("bob@example.com"))
	assert.Equal(t, 2, server.Conversations())
}

func TestSMTPMailer_StableMessageID(t *testing.T) {
	server := testsmtp.Start(t)
	mailer := newTestSMTPMailer(t, server.URL())
	t.Cleanup(func() { _ = mailer.Close() })
	welcome := event.Mail{ID: "welcome.0b5e", To: "ada@example.com", Subject: "Welcome", Body: "Hello Ada"}

	// A repeated send (a crash between the server's acceptance and the
	// "done" mark) is the same message.
	require.NoError(t, mailer.Send(sendCtx(t), welcome))
	require.NoError(t, mailer.Send(sendCtx(t), welcome))
	require.NoError(t, mailer.Send(sendCtx(t), event.Mail{ID: "welcome.7c1d", To: "ada@example.com", Subject: "Welcome", Body: "Hi"}))

	var ids []string
	for _, m := range server.Messages() {
		ids = append(ids, m.MessageID())
	}
	assert.Equal(t, []string{"<welcome.0b5e@onboard.test>", "<welcome.0b5e@onboard.test>", "<welcome.7c1d@onboard.test>"}, ids,
		"Message-ID is <ID@domain of MAIL_FROM>")
}

func TestSMTPMailer_NoHeaderInjection(t *testing.T) {
	// The domain already refuses CR and LF in names and addresses; the mailer
	// must not be the weak link if one ever gets through.
	server := testsmtp.Start(t)
	mailer := newTestSMTPMailer(t, server.URL())

	err := mailer.Send(sendCtx(t), event.Mail{
		To:      "ada@example.com",
		Subject: "Welcome\r\nBcc: eve@evil.test",
		Body:    "Hello Ada",
	})
	if err != nil {
		return // refusing the mail is fine too
	}
	messages := server.Messages()
	require.Len(t, messages, 1)
	assert.Equal(t, []string{"ada@example.com"}, messages[0].To, "no extra recipient")
	parsed, err := messages[0].Parse()
	require.NoError(t, err)
	assert.Empty(t, parsed.Header.Get("Bcc"), "no injected header")
	assert.Zero(t, server.CountTo("eve@evil.test"))
}

func TestSMTPMailer_FailingServer(t *testing.T) {
	server := testsmtp.Start(t)
	mailer := newTestSMTPMailer(t, server.URL())
	welcome := event.Mail{To: "ada@example.com", Subject: "Welcome", Body: "Hello Ada"}

	server.SetFailing(true)
	err := mailer.Send(sendCtx(t), welcome)
	require.Error(t, err, "a 451 answer is a failed send")
	assert.Contains(t, err.Error(), "451")
	assert.Equal(t, app.FailureOutage, failureOf(err),
		"a server refusing the sender refuses every message: hold them: %v", err)
	assert.Positive(t, server.Rejected())
	assert.Empty(t, server.Messages())

	// The retry, once the server is back, delivers the mail once.
	server.SetFailing(false)
	require.NoError(t, mailer.Send(sendCtx(t), welcome))
	assert.Equal(t, 1, server.CountTo("ada@example.com"))
}

func TestSMTPMailer_UnreachableServer(t *testing.T) {
	// Port 1 on loopback: nothing listens there.
	mailer := newTestSMTPMailer(t, "smtp://127.0.0.1:1")

	start := time.Now()
	err := mailer.Send(sendCtx(t), event.Mail{To: "ada@example.com", Subject: "Welcome", Body: "Hello Ada"})
	require.Error(t, err)
	assert.Less(t, time.Since(start), 12*time.Second, "fails within the mailer's timeout")
	assert.Equal(t, app.FailureOutage, failureOf(err), "a server that does not answer may come back: %v", err)
}

func TestSMTPMailer_GreylistedRecipientFailsItsMessageOnly(t *testing.T) {
	server := testsmtp.Start(t)
	mailer := newTestSMTPMailer(t, server.URL())
	server.Greylist("grey@example.com")

	err := mailer.Send(sendCtx(t), event.Mail{To: "grey@example.com", Subject: "Welcome", Body: "Hello"})
	require.Error(t, err)
	assert.Equal(t, app.FailureMessage, failureOf(err),
		"a 4xx to one recipient is that message's failure, not an outage: %v", err)
	assert.Contains(t, err.Error(), "451 4.7.1")
	assert.NotContains(t, err.Error(), "grey@", "no address in an error: it reaches logs and poison reasons")
	assert.NotContains(t, err.Error(), "testsmtp", "nor the server's text, which often quotes it")

	// The same connection pool still serves everyone else.
	require.NoError(t, mailer.Send(sendCtx(t), event.Mail{To: "ada@example.com", Subject: "Welcome", Body: "Hello"}))
	assert.Equal(t, 1, server.CountTo("ada@example.com"))

	server.Ungreylist("grey@example.com")
	require.NoError(t, mailer.Send(sendCtx(t), event.Mail{To: "grey@example.com", Subject: "Welcome", Body: "Hello"}))
	assert.Equal(t, 1, server.CountTo("grey@example.com"))
}

func TestSMTPError_Classes(t *testing.T) {
	tests := []struct {
		err  mail.SMTPError
		want app.Failure
	}{
		{mail.SMTPError{Step: "connect"}, app.FailureOutage},
		{mail.SMTPError{Step: "connect", Code: 535}, app.FailureOutage}, // authentication: every message alike
		{mail.SMTPError{Step: "RCPT TO", Code: 421}, app.FailureOutage}, // the server is closing
		{mail.SMTPError{Step: "DATA"}, app.FailureOutage},               // broke off without a reply
		{mail.SMTPError{Step: "MAIL FROM", Code: 451}, app.FailureOutage},
		{mail.SMTPError{Step: "RCPT TO", Code: 450}, app.FailureMessage},
		{mail.SMTPError{Step: "RCPT TO", Code: 452}, app.FailureMessage},
		{mail.SMTPError{Step: "end of DATA", Code: 451}, app.FailureMessage},
		{mail.SMTPError{Step: "RCPT TO", Code: 550}, app.FailurePermanent},
		{mail.SMTPError{Step: "MAIL FROM", Code: 553}, app.FailureOutage}, // MAIL_FROM is every message's
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			err := fmt.Errorf("send email: %w", &tt.err)
			assert.Equal(t, tt.want, failureOf(err))
		})
	}
}

func TestSMTPMailer_RejectedRecipientIsPermanent(t *testing.T) {
	server := testsmtp.Start(t)
	mailer := newTestSMTPMailer(t, server.URL())

	err := mailer.Send(sendCtx(t), event.Mail{To: "nobody@" + testsmtp.RejectedDomain, Subject: "Welcome", Body: "Hello"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "550")
	assert.Equal(t, app.FailurePermanent, failureOf(err), "a 550 will not pass on a retry: %v", err)
	assert.NotContains(t, err.Error(), "nobody@", "no address in an error")
	assert.Empty(t, server.Messages())
}

func TestSMTPMailer_CanceledContext(t *testing.T) {
	server := testsmtp.Start(t)
	mailer := newTestSMTPMailer(t, server.URL())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	err := mailer.Send(ctx, event.Mail{To: "ada@example.com", Subject: "Welcome", Body: "Hello Ada"})
	require.Error(t, err)
	assert.ErrorIs(t, err, context.Canceled, "a send cut short by a shutdown is retried later")
	assert.Empty(t, server.Messages())
}

func TestSMTPMailer_CredentialsNeverSentInTheClear(t *testing.T) {
	// The test server offers neither TLS nor AUTH: a mailer configured with
	// credentials must refuse to send rather than send unauthenticated or
	// leak the password, and its error must not quote the password.
	server := testsmtp.Start(t)
	mailer := newTestSMTPMailer(t, "smtp://mailer:s3cret@"+server.Addr())

	err := mailer.Send(sendCtx(t), event.Mail{To: "ada@example.com", Subject: "Welcome", Body: "Hello Ada"})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cret")
	assert.Equal(t, app.FailureOutage, failureOf(err),
		"no email can go out until the configuration is fixed: hold them all rather than poison each: %v", err)
	assert.Empty(t, server.Messages())
}

func TestNewSMTPMailer_RejectsBadConfiguration(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		from    string
		wantVar string // the variable the error names
	}{
		{name: "port not a number", url: "smtp://mailuser:s3cret@:bad", from: mailerTestFrom, wantVar: "SMTP_URL"},
		{name: "no host", url: "smtp://mailuser:s3cret@:25", from: mailerTestFrom, wantVar: "SMTP_URL"},
		{name: "no host at all", url: "smtp://mailuser:s3cret@", from: mailerTestFrom, wantVar: "SMTP_URL"},
		{name: "wrong scheme", url: "http://mailuser:s3cret@mail.example.com:25", from: mailerTestFrom, wantVar: "SMTP_URL"},
		{name: "no scheme", url: "mailuser:s3cret@mail.example.com:25", from: mailerTestFrom, wantVar: "SMTP_URL"},
		{name: "not a URL", url: "smtp://mailuser:s3cret@mail example.com:25\x7f", from: mailerTestFrom, wantVar: "SMTP_URL"},
		{name: "bad MAIL_FROM", url: "smtp://mailuser:s3cret@mail.example.com:25", from: "not an address", wantVar: "MAIL_FROM"},
		{name: "empty MAIL_FROM", url: "smtp://mailuser:s3cret@mail.example.com:25", from: "", wantVar: "MAIL_FROM"},
		{name: "MAIL_FROM with header injection", url: "smtp://mailuser:s3cret@mail.example.com:25",
			from: "no-reply@onboard.test\r\nBcc: eve@evil.test", wantVar: "MAIL_FROM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mailer, err := mail.NewSMTPMailer(tt.url, tt.from)
			require.Error(t, err)
			assert.Nil(t, mailer)
			assert.Contains(t, err.Error(), tt.wantVar)
			assert.NotContains(t, err.Error(), "s3cret", "the error never echoes the password")
			assert.NotContains(t, err.Error(), "mailuser", "the error never echoes the URL")
		})
	}
}

func TestNewSMTPMailer_AcceptsGoodConfiguration(t *testing.T) {
	for _, rawURL := range []string{
		"smtp://127.0.0.1:2525",
		"smtp://mail.example.com",
		"smtp://user:s3cret@mail.example.com:587",
		"smtps://user:s3cret@mail.example.com:465",
	} {
		t.Run(rawURL, func(t *testing.T) {
			mailer, err := mail.NewSMTPMailer(rawURL, "Onboard <no-reply@onboard.test>")
			require.NoError(t, err)
			assert.NotNil(t, mailer)
		})
	}
}

func TestNewSMTPMailer_RejectsPortOutOfRange(t *testing.T) {
	// A bad SMTP_URL must stop the service at start, not fail every send later.
	for _, port := range []string{"0", "65536", "99999"} {
		t.Run(port, func(t *testing.T) {
			mailer, err := mail.NewSMTPMailer("smtp://mailuser:s3cret@127.0.0.1:"+port, mailerTestFrom)
			require.Error(t, err, "port %s accepted at start", port)
			assert.Nil(t, mailer)
			assert.Contains(t, err.Error(), "SMTP_URL")
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

// failureOf is the class an error tells of itself; permanent otherwise.
func failureOf(err error) app.Failure {
	var classified app.ClassifiedError
	if errors.As(err, &classified) {
		return classified.Failure()
	}
	return app.FailurePermanent
}
