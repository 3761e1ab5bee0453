// Package mail sends onboard's emails: over SMTP, or, in development, to
// files of a mailbox folder or to the log.
package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/textproto"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/event"
)

// LogMailer writes emails to the log instead of sending them: the
// development default. A log keeps no address and no token: the
// recipient is masked (a***@example.com), the tokens of links redacted.
type LogMailer struct {
	From   string
	Logger *slog.Logger
}

// linkToken matches the token of a link, which no log keeps.
var linkToken = regexp.MustCompile(`token=[^&\s]*`)

// Send logs the email, its recipient masked and the tokens of its links
// redacted.
func (m LogMailer) Send(ctx context.Context, msg event.Mail) error {
	m.Logger.InfoContext(ctx, "email written to the log, not sent (SMTP_URL is unset)", "id", msg.ID, "from", m.From,
		"to", MaskAddress(msg.To), "subject", msg.Subject, "body", linkToken.ReplaceAllString(msg.Body, "token=REDACTED"))
	return nil
}

// MaskAddress keeps of an address the first character of its local part
// and its domain: a***@example.com.
func MaskAddress(address string) string {
	at := strings.LastIndexByte(address, '@')
	if at < 1 {
		return "***"
	}
	return address[:1] + "***" + address[at:]
}

// SMTPMailer sends emails over SMTP. It keeps up to smtpMaxIdle connections
// open between sends (a new conversation per email costs a dial, EHLO and
// QUIT), and skips the NOOP before and the RSET after each message: once the
// server has accepted a message, the only step left is the caller's "done"
// mark, so a crash in between is as unlikely as it can be.
type SMTPMailer struct {
	from     string
	idDomain string // right of the @ in Message-IDs
	client   *mail.Client

	mu   sync.Mutex
	idle []idleSMTPConn // most recently used last
}

type idleSMTPConn struct {
	conn  *smtp.Client
	since time.Time
}

const (
	// smtpMaxIdle is how many connections stay open between sends: one per
	// message a handler works on at a time.
	smtpMaxIdle = 4
	// smtpIdleTimeout closes a connection unused for that long, well before
	// a server's own idle timeout (at least 5 minutes, RFC 5321 4.5.3.2.7).
	smtpIdleTimeout = 30 * time.Second
)

// NewSMTPMailer builds a mailer from smtp://[user:pass@]host:port (STARTTLS
// when the server offers it) or smtps://… (TLS from the first byte).
func NewSMTPMailer(rawURL, from string) (*SMTPMailer, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
		return nil, errors.New("SMTP_URL: want smtp://[user:pass@]host:port")
	}
	idDomain, err := messageIDDomain(from)
	if err != nil {
		return nil, err
	}
	opts := []mail.Option{mail.WithTimeout(10 * time.Second), mail.WithoutNoop(), mail.WithoutRset()}
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
	client, err := mail.NewClient(u.Hostname(), opts...)
	if err != nil {
		return nil, errors.New("SMTP_URL: unusable")
	}
	return &SMTPMailer{from: from, idDomain: idDomain, client: client}, nil
}

// messageIDDomain checks the sender's address and returns its domain, which
// the emails' Message-IDs end with.
func messageIDDomain(from string) (string, error) {
	sender, err := netmail.ParseAddress(from)
	if err != nil || mail.NewMsg().From(from) != nil {
		return "", errors.New("MAIL_FROM: not a valid address")
	}
	return sender.Address[strings.LastIndex(sender.Address, "@")+1:], nil
}

// newMessage is the email from from, made with opts; one with an ID gets
// the Message-ID <ID@idDomain>.
func newMessage(from, idDomain string, msg event.Mail, opts ...mail.MsgOption) (*mail.Msg, error) {
	email := mail.NewMsg(opts...)
	if err := email.From(from); err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if email.To(msg.To) != nil {
		return nil, errors.New("to: not a valid address") // the parser's error quotes it
	}
	if msg.ID != "" {
		email.SetMessageIDWithValue(msg.ID + "@" + idDomain)
	}
	email.Subject(msg.Subject)
	email.SetBodyString(mail.TypeTextPlain, msg.Body)
	return email, nil
}

// Send delivers the email. An email with an ID gets the Message-ID
// <ID@domain of MAIL_FROM>, the same on every send: should a crash repeat a
// send the server had accepted, the two copies are one message to mail
// systems that collapse duplicates by Message-ID.
func (m *SMTPMailer) Send(ctx context.Context, msg event.Mail) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("send email: %w", err)
	}
	email, err := newMessage(m.from, m.idDomain, msg)
	if err != nil {
		return err
	}
	for {
		conn, reused, err := m.conn(ctx)
		if err != nil {
			return fmt.Errorf("send email: %w", connectError(err))
		}
		err = m.client.SendWithSMTPClient(conn, email)
		if err == nil {
			m.putIdle(conn)
			return nil
		}
		_ = conn.Close()
		if reused && !smtpReplied(err) {
			continue // the server had closed the idle connection: on a new one
		}
		return fmt.Errorf("send email: %w", sendError(err))
	}
}

// conn returns an idle connection (reused) or dials a new one.
func (m *SMTPMailer) conn(ctx context.Context) (conn *smtp.Client, reused bool, err error) {
	m.mu.Lock()
	for len(m.idle) > 0 {
		last := m.idle[len(m.idle)-1]
		m.idle = m.idle[:len(m.idle)-1]
		if time.Since(last.since) < smtpIdleTimeout {
			m.mu.Unlock()
			return last.conn, true, nil
		}
		go m.quit(last.conn)
	}
	m.mu.Unlock()
	conn, err = m.client.DialToSMTPClientWithContext(ctx)
	return conn, false, err
}

func (m *SMTPMailer) putIdle(conn *smtp.Client) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.idle) == smtpMaxIdle {
		go m.quit(conn)
		return
	}
	m.idle = append(m.idle, idleSMTPConn{conn: conn, since: time.Now()})
}

func (m *SMTPMailer) quit(conn *smtp.Client) {
	if m.client.CloseWithSMTPClient(conn) != nil {
		_ = conn.Close()
	}
}

// Close ends the idle conversations.
func (m *SMTPMailer) Close() error {
	m.mu.Lock()
	idle := m.idle
	m.idle = nil
	m.mu.Unlock()
	for _, c := range idle {
		m.quit(c.conn)
	}
	return nil
}

// smtpReplied reports whether err carries an SMTP reply code: the server
// answered, so the connection was alive.
func smtpReplied(err error) bool {
	var sendErr *mail.SendError
	return errors.As(err, &sendErr) && sendErr.ErrorCode() > 0
}

// SMTPError is a failed send, told without the recipient's address or the
// server's text, which often quotes it: it is safe in logs and in the
// reason of a poisoned or deferred message.
type SMTPError struct {
	// Step is what failed: "connect" (no conversation could start: network,
	// TLS, authentication), or the command the server answered: "MAIL FROM",
	// "RCPT TO", "DATA", "end of DATA".
	Step string
	// Code is the server's reply code; 0 when the conversation broke off
	// without one.
	Code int
	// Enhanced is the enhanced status code (4.7.1), "" when none was sent.
	Enhanced string
	// cause is kept when it names no person: a network or context error.
	cause error
}

func (e *SMTPError) Error() string {
	var b strings.Builder
	b.WriteString("SMTP " + e.Step + " failed")
	if e.Code > 0 {
		b.WriteString(": server answered " + strconv.Itoa(e.Code))
		if e.Enhanced != "" {
			b.WriteString(" " + e.Enhanced)
		}
	}
	if e.cause != nil {
		b.WriteString(": " + e.cause.Error())
	}
	return b.String()
}

func (e *SMTPError) Unwrap() error { return e.cause }

// Failure: a connection that cannot be made or kept, a 421 (the server is
// closing), or a refused sender (any reply to MAIL FROM: MAIL_FROM is
// every message's) holds every message alike, so it is an outage, which
// waits for the operator rather than poisoning every email; a 4xx to one
// recipient or its data (greylisting, a full mailbox) is this message's
// alone, for now; a 5xx to one recipient or its data (no such user) is
// this message's alone, for good: poisoned at once.
func (e *SMTPError) Failure() app.Failure {
	switch {
	case e.Step == smtpStepConnect || e.Code == 0 || e.Code == 421 || e.Step == smtpStepMailFrom:
		return app.FailureOutage
	case e.Code >= 500:
		return app.FailurePermanent
	}
	return app.FailureMessage
}

const (
	smtpStepConnect  = "connect"
	smtpStepMailFrom = "MAIL FROM"
)

// connectError describes a failed dial, TLS handshake or authentication.
func connectError(err error) *SMTPError {
	out := &SMTPError{Step: smtpStepConnect}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		out.cause = err
	}
	var reply *textproto.Error
	if errors.As(err, &reply) {
		out.Code = reply.Code
	}
	return out
}

// sendError describes a failed conversation by its step and reply code.
func sendError(err error) error {
	var sendErr *mail.SendError
	if !errors.As(err, &sendErr) {
		return connectError(err)
	}
	steps := map[mail.SendErrReason]string{
		mail.ErrSMTPMailFrom:  smtpStepMailFrom,
		mail.ErrSMTPRcptTo:    "RCPT TO",
		mail.ErrSMTPData:      "DATA",
		mail.ErrSMTPDataClose: "end of DATA",
		mail.ErrWriteContent:  "DATA",
	}
	step, ok := steps[sendErr.Reason]
	if !ok {
		// No sender or recipient, nothing that could be encoded: this
		// message will never do.
		return fmt.Errorf("compose email: %s", sendErr.Reason)
	}
	return &SMTPError{Step: step, Code: sendErr.ErrorCode(), Enhanced: sendErr.EnhancedStatusCode()}
}
