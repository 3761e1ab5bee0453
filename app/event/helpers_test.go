package event_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
)

// The handlers are called here directly, on the fakes of internal/testfake:
// what they send, what they record once, and which error, of which class,
// they return. What the router makes of that error (retries, the retry
// and poison queues, redeliveries) is tested in ports/messages.

// testLinks make the verification links of the tests' emails.
var testLinks = testfake.VerificationLinks

// registered is a UserRegistered event at a fixed time.
var registered = testfake.Registered

// delivery is the context of a handler's run on message messageID, as the
// router gives it.
func delivery(messageID string) context.Context {
	return app.WithEventID(context.Background(), messageID)
}

// linkIn returns the verification link of an email's body, checking that
// its token verifies the user's address of this number until the link
// expires, and no other number of it.
func linkIn(t *testing.T, body, userID, email string, number int, expires time.Time) *url.URL {
	t.Helper()
	i := strings.Index(body, testLinks.URL+"?")
	require.GreaterOrEqual(t, i, 0, "a link in %q", body)
	link, err := url.Parse(strings.Fields(body[i:])[0])
	require.NoError(t, err)
	assert.Equal(t, userID, link.Query().Get("user"))
	token := link.Query().Get("token")
	subject := domain.TokenSubject{UserID: userID, EmailKey: domain.EmailKey(email), EmailNumber: number}
	require.NoError(t, testLinks.Key.Check(subject, token, expires.Add(-time.Second), testLinks.TTL))
	assert.ErrorIs(t, testLinks.Key.Check(subject, token, expires, testLinks.TTL), domain.ErrTokenExpired)
	subject.EmailNumber++
	assert.ErrorIs(t, testLinks.Key.Check(subject, token, expires.Add(-time.Second), testLinks.TTL), domain.ErrInvalidToken)
	return link
}

// classified is an error that tells its class, as the adapters' errors do.
type classified struct {
	msg   string
	class app.Failure
}

func (e classified) Error() string        { return e.msg }
func (e classified) Failure() app.Failure { return e.class }

var (
	// errSMTPDown is an outage, as the SMTP mailer classes a 421.
	errSMTPDown error = classified{"smtp: 421 service not available", app.FailureOutage}
	// errGreylisted is a refusal of one recipient, as the SMTP mailer
	// classes a 4xx to one address: a failure of this message alone.
	errGreylisted error = classified{"smtp: 450 greylisted, try again later", app.FailureMessage}
	// errNoSuchUser is a refusal of the recipient for good, as the SMTP
	// mailer classes a 550 to RCPT TO.
	errNoSuchUser error = classified{"smtp: 550 5.1.1 no such user", app.FailurePermanent}
	// errLedgerDown is an outage, as a database that does not answer is.
	errLedgerDown error = classified{"ledger: connection reset", app.FailureOutage}
)

// assertClass checks that err is want, its class as the router will read
// it (the error or one it wraps tells it).
func assertClass(t *testing.T, err, want error, class app.Failure) {
	t.Helper()
	require.ErrorIs(t, err, want)
	var c app.ClassifiedError
	require.ErrorAs(t, err, &c)
	assert.Equal(t, class, c.Failure())
}
