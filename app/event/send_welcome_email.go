// Package event holds onboard's event handlers. Delivery is at-least-once,
// so each handler is idempotent.
package event

import (
	"context"

	"github.com/onboard/onboard/domain"
)

// Mail is one plain-text email.
type Mail struct {
	// ID names the email for good: sending it again sends the same message
	// (the SMTP mailer makes it the Message-ID).
	ID      string
	To      string
	Subject string
	Body    string
}

// Mailer sends an email.
type Mailer interface {
	Send(ctx context.Context, mail Mail) error
}

// Deduplicator runs an effect at most once per claim: the record "handler
// did key" commits only if the effect succeeded, and a concurrent second
// run waits for the first and then does nothing.
type Deduplicator interface {
	Once(ctx context.Context, claim Claim, effect func(ctx context.Context) error) error
}

// Claim is what a handler does at most once: Handler did Key. A handler
// gets its event as stored, its personal fields sealed; one whose effect
// reads them names its event here (a pointer), and Once opens them in
// place with the claim, in the same trip to the store where the store
// allows it, before the effect runs. When the user's key is gone (erased),
// Once runs nothing and returns an error wrapping domain.ErrUserErased.
type Claim struct {
	Handler, Key string
	// Event, when set, is opened; EventID is its id (app.EventID), to
	// which its sealed fields are bound.
	Event   domain.Event
	EventID string
}

// SendWelcomeEmailName is the handler's name, and so its consumer group and
// queue name: never rename it casually.
const SendWelcomeEmailName = "SendWelcomeEmailOnUserRegistered"

// SendWelcomeEmail sends one welcome email per registered user, with the
// link that verifies the address.
type SendWelcomeEmail struct{ linkMailer }

// NewSendWelcomeEmail returns the handler.
func NewSendWelcomeEmail(mailer Mailer, once Deduplicator, links VerificationLinks) SendWelcomeEmail {
	return SendWelcomeEmail{linkMailer{mailer: mailer, once: once, links: links}}
}

// Handle sends the welcome email unless this user already got it.
func (h SendWelcomeEmail) Handle(ctx context.Context, e *domain.UserRegistered) error {
	return h.send(ctx, SendWelcomeEmailName, e.UserID, e, func() linkEmail {
		return linkEmail{texts: welcomeTexts, id: "welcome." + e.UserID,
			userID: e.UserID, address: e.Email, locale: e.Locale, number: domain.FirstEmailNumber, at: e.RegisteredAt}
	})
}
