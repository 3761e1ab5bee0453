package event

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/onboard/onboard/domain"
)

// Handler names, and so consumer groups and queue names: never rename one
// casually.
const (
	SendVerificationEmailName  = "SendVerificationEmailOnVerificationEmailRequested"
	SendNewAddressEmailName    = "SendVerificationEmailOnEmailChanged"
	SendEmailChangedNoticeName = "SendEmailChangedNoticeOnEmailChanged"
)

// SendVerificationEmail sends the link a user asked for again, once per
// request.
type SendVerificationEmail struct{ linkMailer }

// NewSendVerificationEmail returns the handler.
func NewSendVerificationEmail(mailer Mailer, once Deduplicator, links VerificationLinks) SendVerificationEmail {
	return SendVerificationEmail{linkMailer{mailer: mailer, once: once, links: links}}
}

// Handle sends the email unless this request's was sent.
func (h SendVerificationEmail) Handle(ctx context.Context, e *domain.VerificationEmailRequested) error {
	key := eventKey(e.UserID, e.RequestedAt)
	return h.send(ctx, SendVerificationEmailName, key, e, func() linkEmail {
		return linkEmail{texts: verifyTexts, id: "verify." + key,
			userID: e.UserID, address: e.Email, locale: e.Locale, number: e.EmailNumber, at: e.RequestedAt}
	})
}

// SendNewAddressEmail sends a verification link to the address a user
// moved to.
type SendNewAddressEmail struct{ linkMailer }

// NewSendNewAddressEmail returns the handler.
func NewSendNewAddressEmail(mailer Mailer, once Deduplicator, links VerificationLinks) SendNewAddressEmail {
	return SendNewAddressEmail{linkMailer{mailer: mailer, once: once, links: links}}
}

// Handle sends the email unless this change's was sent.
func (h SendNewAddressEmail) Handle(ctx context.Context, e *domain.EmailChanged) error {
	key := eventKey(e.UserID, e.ChangedAt)
	return h.send(ctx, SendNewAddressEmailName, key, e, func() linkEmail {
		return linkEmail{texts: verifyTexts, id: "verify-new." + key,
			userID: e.UserID, address: e.NewEmail, locale: e.Locale, number: e.EmailNumber, at: e.ChangedAt}
	})
}

// SendEmailChangedNotice tells the address a user left that it was
// changed, so that its owner learns of a change they did not make.
type SendEmailChangedNotice struct {
	mailer Mailer
	once   Deduplicator
}

// NewSendEmailChangedNotice returns the handler.
func NewSendEmailChangedNotice(mailer Mailer, once Deduplicator) SendEmailChangedNotice {
	return SendEmailChangedNotice{mailer: mailer, once: once}
}

// Handle sends the notice unless this change's was sent.
func (h SendEmailChangedNotice) Handle(ctx context.Context, e *domain.EmailChanged) error {
	if e.UserID == "" || e.OldEmail == "" {
		return fmt.Errorf("%s: event without user id or address", SendEmailChangedNoticeName)
	}
	key := eventKey(e.UserID, e.ChangedAt)
	return sendOnce(ctx, h.once, h.mailer, claim(ctx, SendEmailChangedNoticeName, key, e), func() Mail {
		return changedTexts.mail("changed."+key, e.OldEmail, e.Locale)
	})
}

// eventKey names one event of a user's stream by its user and time: each
// such event is the one of a command of its own on the stream, and the
// stream's versions put those commands one after the other.
func eventKey(userID string, at time.Time) string {
	return userID + "." + strconv.FormatInt(at.UnixMicro(), 10)
}
