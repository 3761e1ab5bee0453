package mail

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/wneessen/go-mail"

	"github.com/onboard/onboard/app/event"
)

// MailboxMailer writes each email as a file of its own, <ID>.eml (the
// message as an SMTP server would receive it), into a folder: the
// development mailbox of the embedded database, whose links a developer
// opens as they are. It keeps addresses and tokens in the clear, so the
// service uses it on an SQLite database alone, without SMTP_URL. An email
// sent again (the same ID) replaces its file, as one Message-ID.
type MailboxMailer struct {
	dir      string
	from     string
	idDomain string
	logger   *slog.Logger
}

// NewMailboxMailer makes the folder, readable by its owner alone, and
// returns the mailer writing into it as from.
func NewMailboxMailer(dir, from string, logger *slog.Logger) (*MailboxMailer, error) {
	idDomain, err := messageIDDomain(from)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("development mailbox: %w", err)
	}
	return &MailboxMailer{dir: dir, from: from, idDomain: idDomain, logger: logger}, nil
}

// Dir is the folder the emails are written to.
func (m *MailboxMailer) Dir() string { return m.dir }

// unsafeInName matches what a file name of an email's ID does not keep.
var unsafeInName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// Send writes the email into the mailbox, through a temporary file renamed
// into place, so that a reader never sees half an email.
func (m *MailboxMailer) Send(ctx context.Context, msg event.Mail) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("write email: %w", err)
	}
	// 8bit: the body as written, not quoted-printable, which would break
	// a long link's line and encode its '=' signs.
	email, err := newMessage(m.from, m.idDomain, msg, mail.WithEncoding(mail.NoEncoding))
	if err != nil {
		return err
	}
	name := unsafeInName.ReplaceAllString(msg.ID, "_")
	if name == "" {
		name = time.Now().UTC().Format("20060102T150405.000000000")
	}
	path := filepath.Join(m.dir, name+".eml")
	file, err := os.CreateTemp(m.dir, ".writing-*")
	if err != nil {
		return fmt.Errorf("write email: %w", err)
	}
	defer func() { _ = os.Remove(file.Name()) }() // gone once renamed
	_, err = email.WriteTo(file)
	if err = errors.Join(err, file.Close()); err != nil {
		return fmt.Errorf("write email: %w", err)
	}
	if err := os.Rename(file.Name(), path); err != nil {
		return fmt.Errorf("write email: %w", err)
	}
	m.logger.InfoContext(ctx, "email written to the development mailbox, not sent (SMTP_URL is unset)",
		"id", msg.ID, "to", MaskAddress(msg.To), "file", path)
	return nil
}
