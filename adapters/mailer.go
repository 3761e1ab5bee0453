package adapters

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/onboard/onboard/app/event"
)

// LogMailer writes emails to the log instead of sending them.
type LogMailer struct {
	From   string
	Logger *slog.Logger
}

// Send logs the email.
func (m LogMailer) Send(ctx context.Context, msg event.Mail) error {
	m.Logger.InfoContext(ctx, "email", "from", m.From, "to", msg.To, "subject", msg.Subject, "body", msg.Body)
	return nil
}

// SMTPMailer sends emails over SMTP.
type SMTPMailer struct {
	from    string
	options []mail.Option
	host    string
}

// NewSMTPMailer builds a mailer from smtp://[user:pass@]host:port (STARTTLS
// when the server offers it) or smtps://… (TLS from the first byte).
func NewSMTPMailer(rawURL, from string) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("SMTP_URL: want smtp://[user:pass@]host:port")
	}
	if err := mail.NewMsg().From(from); err != nil {
		return nil, errors.New("MAIL_FROM: not a valid address")
	}
	opts := []mail.Option{mail.WithTimeout(10 * time.Second)}
	if port := u.Port(); port != "" {
		p, err := strconv.Atoi(port)
		if err != nil || p < 1 || p > 65535 {
			return nil, errors.New("SMTP_URL: bad port")
		}
		opts = append(opts, mail.WithPort(p))
	}
	if u.Scheme == "smtps" {
		opts = append(opts, mail.WithSSL())
	} else {
		opts = append(opts, mail.WithTLSPolicy(mail.TLSOpportunistic))
	}
	if u.User != nil {
		password, _ := u.User.Password()
		opts = append(opts, mail.WithSMTPAuth(mail.SMTPAuthAutoDiscover),
			mail.WithUsername(u.User.Username()), mail.WithPassword(password))
	}
	return &SMTPMailer{from: from, options: opts, host: u.Hostname()}, nil
}

// Send delivers the email in one SMTP conversation.
func (m *SMTPMailer) Send(ctx context.Context, msg event.Mail) error {
	email := mail.NewMsg()
	if err := email.From(m.from); err != nil {
		return fmt.Errorf("from: %w", err)
	}
	if err := email.To(msg.To); err != nil {
		return fmt.Errorf("to: %w", err)
	}
	email.Subject(msg.Subject)
	email.SetBodyString(mail.TypeTextPlain, msg.Body)
	client, err := mail.NewClient(m.host, m.options...)
	if err != nil {
		return fmt.Errorf("smtp client: %w", err)
	}
	if err := client.DialAndSendWithContext(ctx, email); err != nil {
		return fmt.Errorf("send email: %w", err)
	}
	return nil
}
