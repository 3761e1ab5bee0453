package event

import (
	"context"
	"fmt"
	"net/url"
	"time"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/domain"
)

// VerificationLinks makes the links of verification emails: URL with the
// query ?user=<id>&token=<token>, the token expiring TTL after the event
// that asked for the email. The same event always gives the same link.
type VerificationLinks struct {
	URL string
	TTL time.Duration
	Key domain.VerificationKey
}

// Link is the verification link of the user's address of this number
// (domain.TokenSubject), asked for at.
func (l VerificationLinks) Link(userID, email string, number int, at time.Time) string {
	subject := domain.TokenSubject{UserID: userID, EmailKey: domain.EmailKey(email), EmailNumber: number}
	query := url.Values{"user": {userID}, "token": {l.Key.Token(subject, at.Add(l.TTL))}}
	return l.URL + "?" + query.Encode()
}

// linkMailer sends the emails that carry a verification link.
type linkMailer struct {
	mailer Mailer
	once   Deduplicator
	links  VerificationLinks
}

// linkEmail is an email that carries a verification link: its texts and
// id (the Message-ID), and the user's address, of this number, that the
// link verifies, asked for at.
type linkEmail struct {
	texts   emailTexts
	id      string
	userID  string
	address string
	locale  string
	number  int
	at      time.Time
}

// send sends the email of event once per handler and key; email reads
// the event once it is opened.
func (m linkMailer) send(ctx context.Context, handler, key string, event domain.Event, email func() linkEmail) error {
	if e := email(); e.userID == "" || e.address == "" {
		return fmt.Errorf("%s: event without user id or email", handler)
	}
	return sendOnce(ctx, m.once, m.mailer, claim(ctx, handler, key, event), func() Mail {
		e := email()
		return e.texts.mail(e.id, e.address, e.locale, m.links.Link(e.userID, e.address, e.number, e.at))
	})
}

// claim is handler's claim of key, which opens the event of ctx.
func claim(ctx context.Context, handler, key string, event domain.Event) Claim {
	return Claim{Handler: handler, Key: key, Event: event, EventID: app.EventID(ctx)}
}

// sendOnce sends the mail, which reads the claim's event once it is
// opened, unless the claim's handler already sent the one of its key.
func sendOnce(ctx context.Context, once Deduplicator, mailer Mailer, claim Claim, mail func() Mail) error {
	return once.Once(ctx, claim, func(ctx context.Context) error { return mailer.Send(ctx, mail()) })
}

// emailTexts are an email's subject and body in each locale; %s in a body
// is the link, if any. No text holds the user's name: anyone can register
// any address with a name of their choosing, which would be their text in
// our email.
type emailTexts map[string]struct{ subject, body string }

func (t emailTexts) mail(id, to, locale string, args ...any) Mail {
	text, ok := t[locale]
	if !ok {
		text = t[domain.DefaultLocale]
	}
	return Mail{ID: id, To: to, Subject: text.subject, Body: fmt.Sprintf(text.body, args...)}
}

var (
	welcomeTexts = emailTexts{
		"en": {"Welcome to onboard",
			"Hello,\n\nwelcome to onboard! Your account is ready.\n\nPlease confirm your address by opening this link:\n%s\n"},
		"de": {"Willkommen bei onboard",
			"Hallo,\n\nwillkommen bei onboard! Ihr Konto ist bereit.\n\nBitte bestätigen Sie Ihre Adresse über diesen Link:\n%s\n"},
	}
	verifyTexts = emailTexts{
		"en": {"Confirm your email address", "Hello,\n\nplease confirm your address by opening this link:\n%s\n"},
		"de": {"Bestätigen Sie Ihre E-Mail-Adresse", "Hallo,\n\nbitte bestätigen Sie Ihre Adresse über diesen Link:\n%s\n"},
	}
	resetTexts = emailTexts{
		"en": {"Reset your password",
			"Hello,\n\nsomeone asked to reset the password of the onboard account of this address. " +
				"To choose a new one, open this link within an hour:\n%s\n\nIf it was not you, ignore this email: " +
				"nothing changes.\n"},
		"de": {"Passwort zurücksetzen",
			"Hallo,\n\njemand hat das Zurücksetzen des Passworts des onboard-Kontos dieser Adresse angefordert. " +
				"Um ein neues zu wählen, öffnen Sie innerhalb einer Stunde diesen Link:\n%s\n\nFalls Sie das nicht waren, " +
				"ignorieren Sie diese E-Mail: es ändert sich nichts.\n"},
	}
	changedTexts = emailTexts{
		"en": {"Your email address was changed",
			"Hello,\n\nthe email address of your onboard account was changed; emails now go to the new address.\n" +
				"If you did not make this change, contact us.\n"},
		"de": {"Ihre E-Mail-Adresse wurde geändert",
			"Hallo,\n\ndie E-Mail-Adresse Ihres onboard-Kontos wurde geändert; E-Mails gehen nun an die neue Adresse.\n" +
				"Falls Sie das nicht waren, melden Sie sich bei uns.\n"},
	}
)
