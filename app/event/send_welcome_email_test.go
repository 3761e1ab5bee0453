package event_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
)

func TestSendWelcomeEmail_SendsOneEmailPerUser(t *testing.T) {
	mailer, dedup := &testfake.Mailer{}, testfake.NewDeduplicator()
	handler := event.NewSendWelcomeEmail(mailer, dedup, testLinks)

	for i, e := range []domain.UserRegistered{
		registered("user-1", "Ada Lovelace", "Ada@Example.com"),
		registered("user-2", "Grace Hopper", "grace@example.com"),
	} {
		require.NoError(t, handler.Handle(delivery("message-"+e.UserID), &e), i)
	}

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
	assert.Equal(t, []testfake.Done{
		{Handler: event.SendWelcomeEmailName, Key: "user-1"},
		{Handler: event.SendWelcomeEmailName, Key: "user-2"},
	}, dedup.Records(), "deduplicated per handler and user")
}

// TestSendWelcomeEmail_NeverSendsTheName: anyone may register any address
// with a name of their choosing, so a name in the email would let them
// send their own text from the service to anyone.
func TestSendWelcomeEmail_NeverSendsTheName(t *testing.T) {
	mailer := &testfake.Mailer{}
	const hostile = "Your account was suspended, call +1 555 0100 http://evil.example"
	e := registered("user-1", hostile, "victim@example.com")

	require.NoError(t, event.NewSendWelcomeEmail(mailer, testfake.NewDeduplicator(), testLinks).Handle(delivery("m-1"), &e))

	require.Len(t, mailer.Mails(), 1)
	mail := mailer.Mails()[0]
	assert.Equal(t, "victim@example.com", mail.To)
	for _, part := range []string{mail.Subject, mail.Body} {
		assert.NotContains(t, part, hostile)
		for _, word := range []string{"suspended", "555", "evil.example"} {
			assert.NotContains(t, part, word)
		}
	}
}

// redelivery is one way an event can reach a handler twice: handle calls
// the handler with the context of a delivery of message id.
type redelivery struct {
	name    string
	deliver func(t *testing.T, handle func(ctx context.Context, e domain.UserRegistered), e domain.UserRegistered)
}

// redeliveries are the ways every handler must withstand: the dedup key is
// the event's, not its message's.
func redeliveries() []redelivery {
	return []redelivery{
		{
			name: "same event in two messages",
			deliver: func(_ *testing.T, handle func(context.Context, domain.UserRegistered), e domain.UserRegistered) {
				handle(delivery("message-1"), e)
				handle(delivery("message-2"), e)
			},
		},
		{
			name: "same message delivered twice",
			deliver: func(_ *testing.T, handle func(context.Context, domain.UserRegistered), e domain.UserRegistered) {
				handle(delivery("message-1"), e)
				handle(delivery("message-1"), e)
			},
		},
	}
}

func TestSendWelcomeEmail_Redelivery(t *testing.T) {
	tests := append(redeliveries(), redelivery{
		name: "event delivered again after other users",
		deliver: func(_ *testing.T, handle func(context.Context, domain.UserRegistered), e domain.UserRegistered) {
			handle(delivery("message-1"), e)
			handle(delivery("message-2"), registered("someone-else", "Grace", "grace@example.com"))
			handle(delivery("message-3"), e)
		},
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mailer, dedup := &testfake.Mailer{}, testfake.NewDeduplicator()
			handler := event.NewSendWelcomeEmail(mailer, dedup, testLinks)
			e := registered("user-1", "Ada Lovelace", "ada@example.com")

			tt.deliver(t, func(ctx context.Context, e domain.UserRegistered) {
				require.NoError(t, handler.Handle(ctx, &e))
			}, e)

			assert.Len(t, mailer.To(e.Email), 1, "one welcome email to the user")
			assert.GreaterOrEqual(t, dedup.Calls(), 2, "the redelivery reached the deduplicator")
		})
	}
}

// Deliveries that run at once, as two instances of the service sharing the
// mailer and the deduplicator (the database) do, send one email: one run
// holds the key while its email is on its way, the others wait for it.
func TestSendWelcomeEmail_ConcurrentDeliveries(t *testing.T) {
	mailer := &testfake.Mailer{Gate: make(chan struct{}), Entered: make(chan struct{}, 1)}
	dedup := testfake.NewDeduplicator()
	handler := event.NewSendWelcomeEmail(mailer, dedup, testLinks)
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	const deliveries = 4 // 2 publishes x 2 instances
	errs := make(chan error, deliveries)
	var wg sync.WaitGroup
	for range deliveries {
		wg.Go(func() {
			e := e
			errs <- handler.Handle(delivery("message-1"), &e)
		})
	}
	select {
	case <-mailer.Entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no email was attempted")
	}
	require.Eventually(t, func() bool { return dedup.Calls() == deliveries }, 10*time.Second, time.Millisecond,
		"every delivery entered the deduplicator while the first email was on its way")
	close(mailer.Gate)
	wg.Wait()
	close(errs)

	for err := range errs {
		assert.NoError(t, err)
	}
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
			mailer, dedup := &testfake.Mailer{}, testfake.NewDeduplicator()

			err := event.NewSendWelcomeEmail(mailer, dedup, testLinks).Handle(delivery("m-1"), &tt.event)

			require.Error(t, err)
			assert.Contains(t, err.Error(), event.SendWelcomeEmailName)
			assert.Contains(t, err.Error(), "without user id or email", "the reason the message is poisoned with")
			assert.Empty(t, mailer.Mails())
			assert.Zero(t, dedup.Calls(), "nothing recorded for an incomplete event")
		})
	}
}
