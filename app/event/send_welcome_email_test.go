package event_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
)

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
	mailer := &testfake.Mailer{}
	dedup := newMemDeduplicator()
	h.startRouter(welcomeHandler(mailer, dedup))

	h.publish(registered("user-1", "Ada Lovelace", "Ada@Example.com"))
	h.publish(registered("user-2", "Grace Hopper", "grace@example.com"))

	require.Eventually(t, func() bool { return len(mailer.Mails()) >= 2 }, waitTimeout, time.Millisecond)
	mails := mailer.Mails()
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
	mailer := &testfake.Mailer{}
	h.startRouter(welcomeHandler(mailer, newMemDeduplicator()))

	const hostile = "Your account was suspended, call +1 555 0100 http://evil.example"
	h.publish(registered("user-1", hostile, "victim@example.com"))

	require.Eventually(t, func() bool { return len(mailer.Mails()) >= 1 }, waitTimeout, time.Millisecond)
	mail := mailer.Mails()[0]
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
			mailer := &testfake.Mailer{}
			dedup := newMemDeduplicator()
			h.startRouter(welcomeHandler(mailer, dedup))
			e := registered("user-1", "Ada Lovelace", "ada@example.com")

			tt.deliver(h, e)

			var toAda []event.Mail
			for _, m := range mailer.Mails() {
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
	mailer := &testfake.Mailer{Gate: make(chan struct{}), Entered: make(chan struct{}, 1)}
	dedup := newMemDeduplicator()
	// Two instances of the service share the mailer and the deduplicator (the
	// database): every publish reaches both at the same time.
	h.startRouter(welcomeHandler(mailer, dedup))
	h.startRouter(welcomeHandler(mailer, dedup))
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	first := h.publishAsync(e)
	second := h.publishAsync(e)

	select {
	case <-mailer.Entered:
	case <-time.After(waitTimeout):
		t.Fatal("no email was attempted")
	}
	// One run holds the key while its email is on its way; the other has
	// entered the deduplicator and waits for it.
	require.Eventually(t, func() bool { return dedup.calls.Load() >= 2 }, waitTimeout, time.Millisecond)
	close(mailer.Gate)
	h.wait(first, "first publish")
	h.wait(second, "second publish")

	assert.Equal(t, int32(4), dedup.calls.Load(), "2 publishes x 2 instances")
	assert.Len(t, mailer.Mails(), 1)
	assert.Equal(t, 1, mailer.Attempts())
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
			mailer := &testfake.Mailer{}
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

			assert.Empty(t, mailer.Mails())
			assert.Zero(t, dedup.calls.Load(), "nothing recorded for an incomplete event")
		})
	}
}
