package event_test

import (
	"context"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
	"github.com/onboard/onboard/ports/messages"
)

func TestSendWelcomeEmail_RetriesAFailedSend(t *testing.T) {
	h := newHarness(t)
	mailer := &testfake.Mailer{Failures: 1, FailWith: errSMTPDown}
	dedup := newMemDeduplicator()
	results := &handlerResults{}
	h.startRouter(results.record(welcomeHandler(mailer, dedup)))
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	h.publish(e)

	errs := results.all()
	require.Len(t, errs, 2, "one failed run, one retry")
	assert.ErrorIs(t, errs[0], errSMTPDown, "the handler returns the mailer's error")
	assert.NoError(t, errs[1])
	assert.Equal(t, 2, mailer.Attempts())
	require.Len(t, mailer.Mails(), 1)
	assert.Equal(t, e.Email, mailer.Mails()[0].To)

	h.publish(e)
	assert.Len(t, mailer.Mails(), 1, "a redelivery after the retry sends nothing")
}

// A refusal of one recipient is not retried at once: the message leaves
// its queue for the retry queue, which later gives it back to this handler
// alone.
func TestSendWelcomeEmail_DefersARefusalOfOneRecipient(t *testing.T) {
	h := newHarness(t)
	mailer := &testfake.Mailer{Failures: 1, FailWith: errGreylisted}
	results := &handlerResults{}
	ledger := newMemLedger()
	h.startRouter(results.record(welcomeHandler(mailer, newMemDeduplicator())), pointsHandler(ledger, 100))
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
	assert.Equal(t, 1, ledger.grantCount(), "the redelivery was for the email's handler alone")
}

// An outage is retried at once, then the message is nacked and delivered
// again, as long as it lasts: nothing is poisoned.
func TestSendWelcomeEmail_WaitsOutAnOutage(t *testing.T) {
	h := newHarness(t)
	quickRetries := messages.DefaultRetryPolicy().MaxRetries
	// The first delivery's attempts all fail, and the redelivery's first.
	mailer := &testfake.Mailer{Failures: 1 + quickRetries + 1, FailWith: errSMTPDown}
	results := &handlerResults{}
	poisoned := h.poisoned()
	h.startRouter(results.record(welcomeHandler(mailer, newMemDeduplicator())))
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
func TestSendWelcomeEmail_PoisonsARefusedRecipientAtOnce(t *testing.T) {
	h := newHarness(t)
	mailer := &refusingMailer{refused: "refused@example.com", err: errNoSuchUser}
	results := &handlerResults{}
	poisoned := h.poisoned()
	h.startRouter(results.record(welcomeHandler(mailer, newMemDeduplicator())))

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
	assert.Equal(t, map[string]int{"refused@example.com": 1, "grace@example.com": 1}, mailer.attemptsByRecipient())
	require.Len(t, mailer.mails(), 1)
	assert.Equal(t, "grace@example.com", mailer.mails()[0].To)
	waiting, err := h.retries.List(testenv.Context(t))
	require.NoError(t, err)
	assert.Empty(t, waiting, "a refusal for good does not wait in the retry queue")
}

// refusingMailer fails every send to one recipient with err, and counts
// the attempts per recipient.
type refusingMailer struct {
	refused string
	err     error

	mu       sync.Mutex
	attempts map[string]int
	sent     []event.Mail
}

func (m *refusingMailer) Send(_ context.Context, email event.Mail) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.attempts == nil {
		m.attempts = map[string]int{}
	}
	m.attempts[email.To]++
	if email.To == m.refused {
		return m.err
	}
	m.sent = append(m.sent, email)
	return nil
}

func (m *refusingMailer) attemptsByRecipient() map[string]int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return maps.Clone(m.attempts)
}

func (m *refusingMailer) mails() []event.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.sent)
}
