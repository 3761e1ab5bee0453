package event_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/testfake"
)

// A failed send returns the mailer's error, its class intact, and records
// nothing: the next try (a quick retry, a redelivery, the retry queue's)
// sends the email, once, and a try after that sends nothing.
func TestSendWelcomeEmail_AFailedSendIsTriedAgain(t *testing.T) {
	for _, tt := range []struct {
		name  string
		err   error
		class app.Failure
	}{
		{"an outage", errSMTPDown, app.FailureOutage},
		{"a refusal of one recipient", errGreylisted, app.FailureMessage},
	} {
		t.Run(tt.name, func(t *testing.T) {
			mailer := &testfake.Mailer{Failures: 1, FailWith: tt.err}
			dedup := testfake.NewDeduplicator()
			handler := event.NewSendWelcomeEmail(mailer, dedup, testLinks)
			e := registered("user-1", "Ada Lovelace", "ada@example.com")

			assertClass(t, handler.Handle(delivery("m-1"), &e), tt.err, tt.class)
			assert.Empty(t, mailer.Mails())
			assert.Empty(t, dedup.Records(), "a failed send is not recorded")

			require.NoError(t, handler.Handle(delivery("m-1"), &e), "the retry")
			require.Len(t, mailer.Mails(), 1)
			assert.Equal(t, e.Email, mailer.Mails()[0].To)

			require.NoError(t, handler.Handle(delivery("m-1"), &e))
			assert.Len(t, mailer.Mails(), 1, "a redelivery after the retry sends nothing")
			assert.Equal(t, 2, mailer.Attempts())
		})
	}
}

// A refusal of the recipient for good is returned as the mailer's error,
// permanent, so that the router poisons it at once; the next user's email
// goes out.
func TestSendWelcomeEmail_ARefusedRecipientFailsItsEmailAlone(t *testing.T) {
	mailer := &testfake.Mailer{Refuse: map[string]error{"refused@example.com": errNoSuchUser}}
	dedup := testfake.NewDeduplicator()
	handler := event.NewSendWelcomeEmail(mailer, dedup, testLinks)
	refused, next := registered("user-1", "Refused User", "refused@example.com"), registered("user-2", "Grace", "grace@example.com")

	assertClass(t, handler.Handle(delivery("m-1"), &refused), errNoSuchUser, app.FailurePermanent)
	require.NoError(t, handler.Handle(delivery("m-2"), &next))

	assert.Equal(t, map[string]int{"refused@example.com": 1, "grace@example.com": 1}, mailer.AttemptsByRecipient())
	require.Len(t, mailer.Mails(), 1)
	assert.Equal(t, "grace@example.com", mailer.Mails()[0].To)
	assert.Equal(t, []testfake.Done{{Handler: event.SendWelcomeEmailName, Key: "user-2"}}, dedup.Records())
}
