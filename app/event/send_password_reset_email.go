package event

import (
	"context"
	"fmt"
	"net/url"

	"github.com/onboard/onboard/domain"
)

// SendPasswordResetEmailName is the handler's name, and so its consumer
// group and queue name: never rename it casually.
const SendPasswordResetEmailName = "SendPasswordResetEmailOnPasswordResetRequested"

// ResetLinks makes the links of password reset emails: URL with the query
// ?user=<id>&token=<token>, the token expiring domain.PasswordResetTTL
// after the request. The same event always gives the same link.
type ResetLinks struct {
	URL string
	Key domain.ResetKey
}

// Link is the reset link of the request e.
func (l ResetLinks) Link(e *domain.PasswordResetRequested) string {
	token := l.Key.Token(e.UserID, domain.EmailKey(e.Email), e.EmailNumber, e.Number, e.RequestedAt.Add(domain.PasswordResetTTL))
	return l.URL + "?" + url.Values{"user": {e.UserID}, "token": {token}}.Encode()
}

// SendPasswordResetEmail sends the link of a reset request to the user's
// address, once per request.
type SendPasswordResetEmail struct {
	mailer Mailer
	once   Deduplicator
	links  ResetLinks
}

// NewSendPasswordResetEmail returns the handler.
func NewSendPasswordResetEmail(mailer Mailer, once Deduplicator, links ResetLinks) SendPasswordResetEmail {
	return SendPasswordResetEmail{mailer: mailer, once: once, links: links}
}

// Handle sends the email unless this request's was sent.
func (h SendPasswordResetEmail) Handle(ctx context.Context, e *domain.PasswordResetRequested) error {
	if e.UserID == "" || e.Email == "" {
		return fmt.Errorf("%s: event without user id or email", SendPasswordResetEmailName)
	}
	key := eventKey(e.UserID, e.RequestedAt)
	return sendOnce(ctx, h.once, h.mailer, claim(ctx, SendPasswordResetEmailName, key, e), func() Mail {
		return resetTexts.mail("reset."+key, e.Email, e.Locale, h.links.Link(e))
	})
}
