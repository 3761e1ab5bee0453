package messages_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
)

// testLinks make the verification links of the tests' emails.
var testLinks = testfake.VerificationLinks

func welcomeHandler(mailer event.Mailer, dedup event.Deduplicator) cqrs.EventHandler {
	return cqrs.NewEventHandler(event.SendWelcomeEmailName, event.NewSendWelcomeEmail(mailer, dedup, testLinks).Handle)
}

func pointsHandler(ledger event.PointsGranter, points int) cqrs.EventHandler {
	return cqrs.NewEventHandler(event.SeedSignupPointsName,
		event.NewSeedSignupPoints(ledger, points, func() time.Time { return grantedAt }).Handle)
}

var grantedAt = time.Date(2024, 5, 6, 7, 8, 10, 987654321, time.FixedZone("CEST", 2*60*60))

// signupEntry is the entry pointsHandler grants.
func signupEntry(points int) domain.PointsEntry {
	return domain.PointsEntry{
		Amount:    points,
		Reason:    domain.ReasonSignup,
		GrantedAt: time.Date(2024, 5, 6, 5, 8, 10, 987654000, time.UTC),
	}
}

// errSMTPDown is an outage, as the SMTP mailer classes a 421: retried at
// once, then nacked and redelivered until it passes; never poisoned.
var errSMTPDown error = outage("smtp: 421 service not available")

// errLedgerDown is an outage, as a database that does not answer is.
var errLedgerDown error = outage("ledger: connection reset")

// errNoSuchUser is the SMTP mailer's error for a 550 to the recipient: this
// message's own failure, for good.
var errNoSuchUser error = &mail.SMTPError{Step: "RCPT TO", Code: 550, Enhanced: "5.1.1"}

// errGreylisted is a refusal of one recipient, as the SMTP mailer classes
// a 4xx to one address: a failure of this message alone.
var errGreylisted error = recipientRefusal{}

type recipientRefusal struct{}

func (recipientRefusal) Error() string        { return "smtp: 450 greylisted, try again later" }
func (recipientRefusal) Failure() app.Failure { return app.FailureMessage }

// linkToken is the token of the verification link in an email's body.
func linkToken(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, testLinks.URL+"?")
	require.GreaterOrEqual(t, i, 0, body)
	link, err := url.Parse(strings.Fields(body[i:])[0])
	require.NoError(t, err)
	return link.Query().Get("token")
}
