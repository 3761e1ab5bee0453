package event_test

import (
	"context"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/mail"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/ports/messages"
)

// recordingMailer records the emails it sent. failures makes the first
// sends fail (with failWith); gate, when set, holds every send until it is closed, and
// entered receives a value each time a send starts.
type recordingMailer struct {
	mu       sync.Mutex
	sent     []event.Mail
	attempts int
	failures int
	failWith error // errSMTPDown when nil
	gate     chan struct{}
	entered  chan struct{}
}

// errSMTPDown is an outage, as the SMTP mailer classes a 421: retried at
// once, then nacked and redelivered until it passes; never poisoned.
var errSMTPDown error = outage("smtp: 421 service not available")

// errNoSuchUser is the SMTP mailer's error for a 550 to the recipient: this
// message's own failure, for good.
var errNoSuchUser error = &mail.SMTPError{Step: "RCPT TO", Code: 550, Enhanced: "5.1.1"}

// errGreylisted is a refusal of one recipient, as the SMTP mailer classes
// a 4xx to one address: a failure of this message alone.
var errGreylisted error = recipientRefusal{}

type recipientRefusal struct{}

func (recipientRefusal) Error() string        { return "smtp: 450 greylisted, try again later" }
func (recipientRefusal) Failure() app.Failure { return app.FailureMessage }

func (m *recordingMailer) Send(ctx context.Context, mail event.Mail) error {
	if m.entered != nil {
		select {
		case m.entered <- struct{}{}:
		default:
		}
	}
	if m.gate != nil {
		select {
		case <-m.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts++
	if m.attempts <= m.failures {
		if m.failWith != nil {
			return m.failWith
		}
		return errSMTPDown
	}
	m.sent = append(m.sent, mail)
	return nil
}

func (m *recordingMailer) mails() []event.Mail {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]event.Mail(nil), m.sent...)
}

func (m *recordingMailer) attemptCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts
}

// memDeduplicator honours the event.Deduplicator contract in memory: one
// lock per (handler, key), held while the effect runs, so a concurrent second
// run waits for the first; the record is kept only when the effect succeeded.
// The tests' events are in the clear: opening one leaves it as it is.
type memDeduplicator struct {
	mu    sync.Mutex
	locks map[[2]string]*sync.Mutex
	done  map[[2]string]bool
	calls atomic.Int32
}

func newMemDeduplicator() *memDeduplicator {
	return &memDeduplicator{locks: map[[2]string]*sync.Mutex{}, done: map[[2]string]bool{}}
}

func (d *memDeduplicator) Once(ctx context.Context, claim event.Claim, effect func(ctx context.Context) error) error {
	d.calls.Add(1)
	id := [2]string{claim.Handler, claim.Key}
	d.mu.Lock()
	lock, ok := d.locks[id]
	if !ok {
		lock = &sync.Mutex{}
		d.locks[id] = lock
	}
	d.mu.Unlock()

	lock.Lock()
	defer lock.Unlock()
	d.mu.Lock()
	done := d.done[id]
	d.mu.Unlock()
	if done {
		return nil
	}
	if err := effect(ctx); err != nil {
		return err
	}
	d.mu.Lock()
	d.done[id] = true
	d.mu.Unlock()
	return nil
}

func (d *memDeduplicator) records() map[[2]string]bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	records := map[[2]string]bool{}
	for id, done := range d.done {
		records[id] = done
	}
	return records
}

// testLinks make the verification links of the tests' emails.
var testLinks = event.VerificationLinks{
	URL: "https://onboard.example/verify-email",
	TTL: 48 * time.Hour,
	Key: domain.VerificationKey(strings.Repeat("k", domain.MinVerificationKeyBytes)),
}

func welcomeHandler(mailer event.Mailer, dedup event.Deduplicator) cqrs.EventHandler {
	return cqrs.NewEventHandler(event.SendWelcomeEmailName, event.NewSendWelcomeEmail(mailer, dedup, testLinks).Handle)
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

func TestSendWelcomeEmail_SendsOneEmailPerUser(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{}
	dedup := newMemDeduplicator()
	h.startRouter(welcomeHandler(mailer, dedup))

	h.publish(registered("user-1", "Ada Lovelace", "Ada@Example.com"))
	h.publish(registered("user-2", "Grace Hopper", "grace@example.com"))

	require.Eventually(t, func() bool { return len(mailer.mails()) >= 2 }, waitTimeout, time.Millisecond)
	mails := mailer.mails()
	require.Len(t, mails, 2)
	for i, want := range []struct{ id, user, to string }{
		{"welcome.user-1", "user-1", "Ada@Example.com"},
		{"welcome.user-2", "user-2", "grace@example.com"},
	} {
		assert.Equal(t, want.id, mails[i].ID, "one id per user: a repeated send is the same email")
		assert.Equal(t, want.to, mails[i].To, "sent to the address as typed")
		assert.Equal(t, "Welcome to onboard", mails[i].Subject)
		assert.True(t, strings.HasPrefix(mails[i].Body, "Hello,\n\nwelcome to onboard! Your account is ready.\n"),
			mails[i].Body)
		linkIn(t, mails[i].Body, want.user, want.to, domain.FirstEmailNumber,
			registered("", "", "").RegisteredAt.Add(testLinks.TTL))
	}
	assert.Equal(t, map[[2]string]bool{
		{event.SendWelcomeEmailName, "user-1"}: true,
		{event.SendWelcomeEmailName, "user-2"}: true,
	}, dedup.records(), "deduplicated per handler and user")
}

// TestSendWelcomeEmail_NeverSendsTheName: anyone may register any address
// with a name of their choosing, so a name in the email would let them
// send their own text from the service to anyone.
func TestSendWelcomeEmail_NeverSendsTheName(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{}
	h.startRouter(welcomeHandler(mailer, newMemDeduplicator()))

	const hostile = "Your account was suspended, call +1 555 0100 http://evil.example"
	h.publish(registered("user-1", hostile, "victim@example.com"))

	require.Eventually(t, func() bool { return len(mailer.mails()) >= 1 }, waitTimeout, time.Millisecond)
	mail := mailer.mails()[0]
	assert.Equal(t, "victim@example.com", mail.To)
	for _, part := range []string{mail.Subject, mail.Body} {
		assert.NotContains(t, part, hostile)
		for _, word := range []string{"suspended", "555", "evil.example"} {
			assert.NotContains(t, part, word)
		}
	}
}

// redelivery is one way an event can reach a handler twice.
type redelivery struct {
	name    string
	deliver func(h *harness, e domain.UserRegistered)
}

// redeliveries are the ways every handler must withstand.
func redeliveries() []redelivery {
	return []redelivery{
		{
			name: "same event published twice",
			deliver: func(h *harness, e domain.UserRegistered) {
				h.publish(e)
				h.publish(e)
			},
		},
		{
			name: "same message delivered twice",
			deliver: func(h *harness, e domain.UserRegistered) {
				msg, err := transport.NewMarshaler(domain.Events).Marshal(e)
				require.NoError(h.t, err)
				h.publishMessage(msg)
				h.publishMessage(msg)
			},
		},
	}
}

func TestSendWelcomeEmail_Redelivery(t *testing.T) {
	tests := append(redeliveries(), redelivery{
		name: "event published again after other users",
		deliver: func(h *harness, e domain.UserRegistered) {
			h.publish(e)
			h.publish(registered("someone-else", "Grace", "grace@example.com"))
			h.publish(e)
		},
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			mailer := &recordingMailer{}
			dedup := newMemDeduplicator()
			h.startRouter(welcomeHandler(mailer, dedup))
			e := registered("user-1", "Ada Lovelace", "ada@example.com")

			tt.deliver(h, e)

			var toAda []event.Mail
			for _, m := range mailer.mails() {
				if m.To == e.Email {
					toAda = append(toAda, m)
				}
			}
			assert.Len(t, toAda, 1, "one welcome email to the user")
			assert.GreaterOrEqual(t, int(dedup.calls.Load()), 2, "the redelivery reached the handler")
		})
	}
}

func TestSendWelcomeEmail_ConcurrentDeliveries(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	dedup := newMemDeduplicator()
	// Two instances of the service share the mailer and the deduplicator (the
	// database): every publish reaches both at the same time.
	h.startRouter(welcomeHandler(mailer, dedup))
	h.startRouter(welcomeHandler(mailer, dedup))
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	first := h.publishAsync(e)
	second := h.publishAsync(e)

	select {
	case <-mailer.entered:
	case <-time.After(waitTimeout):
		t.Fatal("no email was attempted")
	}
	// One run holds the key while its email is on its way; the other has
	// entered the deduplicator and waits for it.
	require.Eventually(t, func() bool { return dedup.calls.Load() >= 2 }, waitTimeout, time.Millisecond)
	close(mailer.gate)
	h.wait(first, "first publish")
	h.wait(second, "second publish")

	assert.Equal(t, int32(4), dedup.calls.Load(), "2 publishes x 2 instances")
	assert.Len(t, mailer.mails(), 1)
	assert.Equal(t, 1, mailer.attemptCount())
}

func TestSendWelcomeEmail_RetriesAFailedSend(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{failures: 1}
	dedup := newMemDeduplicator()
	results := &handlerResults{}
	h.startRouter(results.record(welcomeHandler(mailer, dedup)))
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	h.publish(e)

	errs := results.all()
	require.Len(t, errs, 2, "one failed run, one retry")
	assert.ErrorIs(t, errs[0], errSMTPDown, "the handler returns the mailer's error")
	assert.NoError(t, errs[1])
	assert.Equal(t, 2, mailer.attemptCount())
	require.Len(t, mailer.mails(), 1)
	assert.Equal(t, e.Email, mailer.mails()[0].To)

	h.publish(e)
	assert.Len(t, mailer.mails(), 1, "a redelivery after the retry sends nothing")
}

// A refusal of one recipient is not retried at once: the message leaves
// its queue for the retry queue, which later gives it back to this handler
// alone.
func TestSendWelcomeEmail_DefersARefusalOfOneRecipient(t *testing.T) {
	h := newHarness(t)
	mailer := &recordingMailer{failures: 1, failWith: errGreylisted}
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
	assert.Empty(t, mailer.mails())

	h.runRetries()
	// The queue deletes its entry once every handler acked the redelivery.
	require.Eventually(t, func() bool {
		waiting, err := h.retries.List(testenv.Context(t))
		return err == nil && len(waiting) == 0
	}, waitTimeout, 10*time.Millisecond)
	require.Len(t, mailer.mails(), 1)
	assert.Equal(t, e.Email, mailer.mails()[0].To)
	assert.Equal(t, 2, mailer.attemptCount())
	assert.Equal(t, 1, ledger.grantCount(), "the redelivery was for the email's handler alone")
}

// An outage is retried at once, then the message is nacked and delivered
// again, as long as it lasts: nothing is poisoned.
func TestSendWelcomeEmail_WaitsOutAnOutage(t *testing.T) {
	h := newHarness(t)
	quickRetries := messages.DefaultRetryPolicy().MaxRetries
	// The first delivery's attempts all fail, and the redelivery's first.
	mailer := &recordingMailer{failures: 1 + quickRetries + 1}
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
	require.Len(t, mailer.mails(), 1)
	assert.Equal(t, e.Email, mailer.mails()[0].To)
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

func TestSendWelcomeEmail_RejectsIncompleteEvents(t *testing.T) {
	tests := []struct {
		name  string
		event domain.UserRegistered
	}{
		{name: "missing user id", event: registered("", "Ada Lovelace", "ada@example.com")},
		{name: "missing email", event: registered("user-1", "Ada Lovelace", "")},
		{name: "empty event", event: domain.UserRegistered{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mailer := &recordingMailer{}
			dedup := newMemDeduplicator()

			t.Run("Handle", func(t *testing.T) {
				err := event.NewSendWelcomeEmail(mailer, dedup, testLinks).Handle(context.Background(), &tt.event)
				require.Error(t, err)
				assert.Contains(t, err.Error(), event.SendWelcomeEmailName)
			})

			t.Run("on the router", func(t *testing.T) {
				h := newHarness(t)
				results := &handlerResults{}
				poisoned := h.poisoned()
				h.startRouter(results.record(welcomeHandler(mailer, dedup)))

				done := h.publishAsync(tt.event)
				select {
				case msg := <-poisoned:
					msg.Ack()
					assert.Contains(t, msg.Metadata.Get(middleware.ReasonForPoisonedKey), "without user id or email")
				case <-time.After(waitTimeout):
					t.Fatal("the incomplete event did not reach the poison queue")
				}
				h.wait(done, "publish")
				require.NotEmpty(t, results.all())
				for _, err := range results.all() {
					assert.Error(t, err)
				}
			})

			assert.Empty(t, mailer.mails())
			assert.Zero(t, dedup.calls.Load(), "nothing recorded for an incomplete event")
		})
	}
}
