package messages_test

import (
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
	"github.com/onboard/onboard/ports/messages"
)

// An outage is retried at once, in the same delivery: the handler's
// second run passes, and a redelivery after it does nothing more.
func TestNewRouter_RetriesAnOutageAtOnce(t *testing.T) {
	e := registered("user-1", "Ada Lovelace", "ada@example.com")
	for _, tt := range []struct {
		name    string
		handler func() (cqrs.EventHandler, func(t *testing.T))
		failure error
	}{
		{"email", func() (cqrs.EventHandler, func(t *testing.T)) {
			mailer := &testfake.Mailer{Failures: 1, FailWith: errSMTPDown}
			return welcomeHandler(mailer, testfake.NewDeduplicator()), func(t *testing.T) {
				assert.Equal(t, 2, mailer.Attempts())
				require.Len(t, mailer.Mails(), 1)
				assert.Equal(t, e.Email, mailer.Mails()[0].To)
			}
		}, errSMTPDown},
		{"points", func() (cqrs.EventHandler, func(t *testing.T)) {
			ledger := &testfake.Ledger{Failures: 1, FailWith: errLedgerDown}
			return pointsHandler(ledger, 100), func(t *testing.T) {
				assert.Equal(t, []domain.PointsEntry{signupEntry(100)}, ledger.Of("user-1"))
			}
		}, errLedgerDown},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			handler, assertDoneOnce := tt.handler()
			results := &handlerResults{}
			h.startRouter(results.record(handler))

			h.publish(e)

			errs := results.all()
			require.Len(t, errs, 2, "one failed run, one retry")
			assert.ErrorIs(t, errs[0], tt.failure, "the handler returns its dependency's error")
			assert.NoError(t, errs[1])
			assertDoneOnce(t)

			h.publish(e)
			assertDoneOnce(t) // a redelivery after the retry does nothing more
		})
	}
}

// A refusal of one recipient is not retried at once: the message leaves
// its queue for the retry queue, which later gives it back to this handler
// alone.
func TestNewRouter_DefersARefusalOfOneRecipient(t *testing.T) {
	h := newHarnessOn(t, testenv.MigratedDB(t, testenv.Backends()[0]).DB)
	mailer := &testfake.Mailer{Failures: 1, FailWith: errGreylisted}
	results := &handlerResults{}
	ledger := &testfake.Ledger{}
	h.startRouter(results.record(welcomeHandler(mailer, testfake.NewDeduplicator())), pointsHandler(ledger, 100))
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	h.publish(e)

	errs := results.all()
	require.Len(t, errs, 1, "no quick retry")
	assert.ErrorIs(t, errs[0], errGreylisted)
	waiting, err := h.retries.List(testenv.Context(t))
	require.NoError(t, err)
	require.Len(t, waiting, 1)
	assert.Equal(t, event.SendWelcomeEmailName, waiting[0].Handler)
	assert.Equal(t, 1, waiting[0].Attempts)
	assert.Equal(t, errGreylisted.Error(), waiting[0].Reason)
	assert.Empty(t, mailer.Mails())

	h.runRetries()
	// The queue deletes its entry once every handler acked the redelivery.
	require.Eventually(t, func() bool {
		waiting, err := h.retries.List(testenv.Context(t))
		return err == nil && len(waiting) == 0
	}, waitTimeout, 10*time.Millisecond)
	require.Len(t, mailer.Mails(), 1)
	assert.Equal(t, e.Email, mailer.Mails()[0].To)
	assert.Equal(t, 2, mailer.Attempts())
	assert.Equal(t, 1, ledger.Grants(), "the redelivery was for the email's handler alone")
}

// An outage is retried at once, then the message is nacked and delivered
// again, as long as it lasts: nothing is poisoned.
func TestNewRouter_WaitsOutAnOutage(t *testing.T) {
	h := newHarness(t)
	quickRetries := messages.DefaultRetryPolicy().MaxRetries
	// The first delivery's attempts all fail, and the redelivery's first.
	mailer := &testfake.Mailer{Failures: 1 + quickRetries + 1, FailWith: errSMTPDown}
	results := &handlerResults{}
	poisoned := h.poisoned()
	h.startRouter(results.record(welcomeHandler(mailer, testfake.NewDeduplicator())))
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	h.publish(e) // gochannel delivers a nacked message again before the publish returns

	errs := results.all()
	require.Len(t, errs, 1+quickRetries+2, "one delivery with its quick retries, then a redelivery and its quick retry")
	for _, err := range errs[:len(errs)-1] {
		assert.ErrorIs(t, err, errSMTPDown)
	}
	assert.NoError(t, errs[len(errs)-1])
	require.Len(t, mailer.Mails(), 1)
	assert.Equal(t, e.Email, mailer.Mails()[0].To)
	select {
	case msg := <-poisoned:
		msg.Ack()
		t.Fatalf("an outage was poisoned: %s", msg.Metadata.Get(middleware.ReasonForPoisonedKey))
	default:
	}
}

// A refusal of the recipient for good (a 550 to RCPT TO) is attempted once
// and poisoned at once with its reason: no quick retry holds the messages
// behind it.
func TestNewRouter_PoisonsARefusedRecipientAtOnce(t *testing.T) {
	h := newHarness(t)
	mailer := &testfake.Mailer{Refuse: map[string]error{"refused@example.com": errNoSuchUser}}
	results := &handlerResults{}
	poisoned := h.poisoned()
	h.startRouter(results.record(welcomeHandler(mailer, testfake.NewDeduplicator())))

	done := h.publishAsync(registered("user-1", "Refused User", "refused@example.com"))
	select {
	case msg := <-poisoned:
		msg.Ack()
		assert.Equal(t, "SMTP RCPT TO failed: server answered 550 5.1.1",
			msg.Metadata.Get(middleware.ReasonForPoisonedKey), "poisoned with its reason, and no address")
		assert.Equal(t, event.SendWelcomeEmailName, msg.Metadata.Get(middleware.PoisonedHandlerKey))
	case <-time.After(waitTimeout):
		t.Fatal("nothing reached the poison queue")
	}
	h.wait(done, "publish")
	h.publish(registered("user-2", "Grace Hopper", "grace@example.com"))

	errs := results.all()
	require.Len(t, errs, 2, "one attempt per message: the refused one is not retried")
	assert.ErrorIs(t, errs[0], errNoSuchUser)
	assert.NoError(t, errs[1])
	assert.Equal(t, map[string]int{"refused@example.com": 1, "grace@example.com": 1}, mailer.AttemptsByRecipient())
	require.Len(t, mailer.Mails(), 1)
	assert.Equal(t, "grace@example.com", mailer.Mails()[0].To)
	waiting, err := h.retries.List(testenv.Context(t))
	require.NoError(t, err)
	assert.Empty(t, waiting, "a refusal for good does not wait in the retry queue")
}

// An event a handler rejects (an error that tells no class) is poisoned at
// once, with the handler's reason; the handler has done nothing.
func TestNewRouter_PoisonsAnIncompleteEvent(t *testing.T) {
	type outcome struct {
		handler     cqrs.EventHandler
		nothingDone func(t *testing.T)
	}
	welcome := func() outcome {
		mailer, dedup := &testfake.Mailer{}, testfake.NewDeduplicator()
		return outcome{welcomeHandler(mailer, dedup), func(t *testing.T) {
			assert.Empty(t, mailer.Mails())
			assert.Zero(t, dedup.Calls(), "nothing recorded for an incomplete event")
		}}
	}
	points := func() outcome {
		ledger := &testfake.Ledger{}
		return outcome{pointsHandler(ledger, 100), func(t *testing.T) {
			assert.Zero(t, ledger.Grants(), "nothing granted")
			assert.Empty(t, ledger.Of(""))
		}}
	}
	for _, tt := range []struct {
		name       string
		event      domain.UserRegistered
		handler    func() outcome
		poisonedBy string
		reason     string
	}{
		{"email: missing user id", registered("", "Ada Lovelace", "ada@example.com"), welcome,
			event.SendWelcomeEmailName, "without user id or email"},
		{"email: missing email", registered("user-1", "Ada Lovelace", ""), welcome,
			event.SendWelcomeEmailName, "without user id or email"},
		{"email: empty event", domain.UserRegistered{}, welcome, event.SendWelcomeEmailName, "without user id or email"},
		{"points: missing user id", registered("", "Ada Lovelace", "ada@example.com"), points,
			event.SeedSignupPointsName, "without user id"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			handler := tt.handler()
			results := &handlerResults{}
			poisoned := h.poisoned()
			h.startRouter(results.record(handler.handler))

			done := h.publishAsync(tt.event)
			select {
			case msg := <-poisoned:
				msg.Ack()
				assert.Contains(t, msg.Metadata.Get(middleware.ReasonForPoisonedKey), tt.reason)
				assert.Equal(t, tt.poisonedBy, msg.Metadata.Get(middleware.PoisonedHandlerKey))
			case <-time.After(waitTimeout):
				t.Fatal("the incomplete event did not reach the poison queue")
			}
			h.wait(done, "publish")
			require.NotEmpty(t, results.all())
			for _, err := range results.all() {
				assert.Error(t, err)
			}
			handler.nothingDone(t)
		})
	}
}
