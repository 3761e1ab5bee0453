package event_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
)

var changedAt = time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)

func emailChanged(userID string) domain.EmailChanged {
	return domain.EmailChanged{UserID: userID, OldEmail: "Ada@Example.com", NewEmail: "Lovelace@Example.org",
		EmailNumber: 2, Locale: "en", ChangedAt: changedAt}
}

// An email change sends a verification link to the new address and a
// notice to the old one, each by a handler (a consumer group) of its own,
// each once whatever is redelivered.
func TestEmailChanged_VerifiesTheNewAddressAndWarnsTheOldOne(t *testing.T) {
	mailer, dedup := &testfake.Mailer{}, testfake.NewDeduplicator()
	verifyNew := event.NewSendNewAddressEmail(mailer, dedup, testLinks)
	warnOld := event.NewSendEmailChangedNotice(mailer, dedup)
	e := emailChanged("user-1")
	for range 2 { // the second, a redelivery
		require.NoError(t, verifyNew.Handle(delivery("m-1"), &e))
		require.NoError(t, warnOld.Handle(delivery("m-1"), &e))
	}

	mails := mailer.Mails()
	require.Len(t, mails, 2)
	byTo := map[string]event.Mail{}
	for _, m := range mails {
		byTo[m.To] = m
	}
	verify := byTo["Lovelace@Example.org"]
	assert.Equal(t, "Confirm your email address", verify.Subject)
	linkIn(t, verify.Body, "user-1", "lovelace@example.org", 2, changedAt.Add(testLinks.TTL))
	notice := byTo["Ada@Example.com"]
	assert.Equal(t, "Your email address was changed", notice.Subject)
	assert.NotContains(t, notice.Body, "token", "the old address gets no link")
	assert.NotContains(t, notice.Body, "Lovelace", "nor the new address")
	assert.Len(t, dedup.Records(), 2)
}

func TestSendVerificationEmail_SendsTheLinkAskedFor(t *testing.T) {
	mailer := &testfake.Mailer{}
	requestedAt := changedAt.Add(time.Hour)
	require.NoError(t, event.NewSendVerificationEmail(mailer, testfake.NewDeduplicator(), testLinks).Handle(delivery("m-1"),
		&domain.VerificationEmailRequested{UserID: "user-1", Email: "ada@example.com", EmailNumber: 3, Locale: "de",
			RequestedAt: requestedAt}))

	mails := mailer.Mails()
	require.Len(t, mails, 1)
	assert.Equal(t, "Bestätigen Sie Ihre E-Mail-Adresse", mails[0].Subject, "in the user's language")
	linkIn(t, mails[0].Body, "user-1", "ada@example.com", 3, requestedAt.Add(testLinks.TTL))
}

// A welcome email sent again (its first send failed after leaving, say)
// carries the link the user may already have: the same token.
func TestSendWelcomeEmail_SendsTheSameLinkAgain(t *testing.T) {
	first, second := &testfake.Mailer{}, &testfake.Mailer{}
	e := registered("user-1", "Ada Lovelace", "ada@example.com")
	for _, mailer := range []*testfake.Mailer{first, second} {
		require.NoError(t, event.NewSendWelcomeEmail(mailer, testfake.NewDeduplicator(), testLinks).Handle(context.Background(), &e))
	}
	require.Len(t, first.Mails(), 1)
	require.Len(t, second.Mails(), 1)
	assert.Equal(t, first.Mails()[0].Body, second.Mails()[0].Body)
}

// Each link email sent again (its first send failed after leaving, say)
// carries the link the user may already have: the same token, of the same
// address number.
func TestLinkEmails_SendTheSameLinkAgain(t *testing.T) {
	requested := domain.VerificationEmailRequested{UserID: "user-1", Email: "ada@example.com", EmailNumber: 3, Locale: "en",
		RequestedAt: changedAt}
	changed := emailChanged("user-1")
	for name, send := range map[string]func(event.Mailer) error{
		event.SendVerificationEmailName: func(m event.Mailer) error {
			return event.NewSendVerificationEmail(m, testfake.NewDeduplicator(), testLinks).Handle(context.Background(), &requested)
		},
		event.SendNewAddressEmailName: func(m event.Mailer) error {
			return event.NewSendNewAddressEmail(m, testfake.NewDeduplicator(), testLinks).Handle(context.Background(), &changed)
		},
	} {
		first, second := &testfake.Mailer{}, &testfake.Mailer{}
		require.NoError(t, send(first), name)
		require.NoError(t, send(second), name)
		require.Len(t, first.Mails(), 1, name)
		require.Len(t, second.Mails(), 1, name)
		assert.Equal(t, first.Mails()[0], second.Mails()[0], name)
	}
}

// An EmailChanged of version 1, upcast, says no address number (0): the
// new address gets its email, but its link, of number 0, never verifies
// (the user asks for a new one), rather than a guessed number's.
func TestSendNewAddressEmail_WithoutAnAddressNumber(t *testing.T) {
	mailer := &testfake.Mailer{}
	e := emailChanged("user-1")
	e.EmailNumber = 0
	require.NoError(t, event.NewSendNewAddressEmail(mailer, testfake.NewDeduplicator(), testLinks).Handle(delivery("m-1"), &e))

	mails := mailer.Mails()
	require.Len(t, mails, 1)
	assert.Equal(t, e.NewEmail, mails[0].To)
	i := strings.Index(mails[0].Body, testLinks.URL+"?")
	require.GreaterOrEqual(t, i, 0, mails[0].Body)
	link, err := url.Parse(strings.Fields(mails[0].Body[i:])[0])
	require.NoError(t, err)
	for number := range 4 {
		subject := domain.TokenSubject{UserID: "user-1", EmailKey: domain.EmailKey(e.NewEmail), EmailNumber: number}
		assert.ErrorIs(t, testLinks.Key.Check(subject, link.Query().Get("token"), changedAt, testLinks.TTL),
			domain.ErrInvalidToken, "number %d", number)
	}
}

func TestLifecycleEmails_RejectIncompleteEvents(t *testing.T) {
	mailer, dedup := &testfake.Mailer{}, testfake.NewDeduplicator()
	ctx := context.Background()
	assert.ErrorContains(t, event.NewSendVerificationEmail(mailer, dedup, testLinks).Handle(ctx,
		&domain.VerificationEmailRequested{UserID: "user-1"}), event.SendVerificationEmailName)
	assert.ErrorContains(t, event.NewSendNewAddressEmail(mailer, dedup, testLinks).Handle(ctx,
		&domain.EmailChanged{UserID: "user-1", OldEmail: "a@example.com"}), event.SendNewAddressEmailName)
	assert.ErrorContains(t, event.NewSendEmailChangedNotice(mailer, dedup).Handle(ctx,
		&domain.EmailChanged{NewEmail: "a@example.com"}), event.SendEmailChangedNoticeName)
	assert.Empty(t, mailer.Mails())
}
