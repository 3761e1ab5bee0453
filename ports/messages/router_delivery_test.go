package messages_test

import (
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
)

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

// Whichever way an event comes again, it reaches the handler again, which
// sends its email once.
func TestNewRouter_RedeliveriesReachTheEmailHandler(t *testing.T) {
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
			mailer, dedup := &testfake.Mailer{}, testfake.NewDeduplicator()
			h.startRouter(welcomeHandler(mailer, dedup))
			e := registered("user-1", "Ada Lovelace", "ada@example.com")

			tt.deliver(h, e)

			assert.Len(t, mailer.To(e.Email), 1, "one welcome email to the user")
			assert.GreaterOrEqual(t, dedup.Calls(), 2, "the redelivery reached the handler")
		})
	}
}

// Whichever way an event comes again, it reaches the handler again, which
// grants the points once.
func TestNewRouter_RedeliveriesReachThePointsHandler(t *testing.T) {
	for _, tt := range redeliveries() {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ledger := &testfake.Ledger{}
			h.startRouter(pointsHandler(ledger, 100))

			tt.deliver(h, registered("user-1", "Ada Lovelace", "ada@example.com"))

			assert.Equal(t, 2, ledger.Grants(), "the redelivery reached the handler")
			assert.Equal(t, []domain.PointsEntry{signupEntry(100)}, ledger.Of("user-1"))
		})
	}
}

// Two instances of the service on one transport, sharing the mailer and
// the deduplicator (the database), each get every event, at the same time.
func TestNewRouter_TwoInstancesDeliverConcurrently(t *testing.T) {
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	t.Run("email", func(t *testing.T) {
		h := newHarness(t)
		mailer := &testfake.Mailer{Gate: make(chan struct{}), Entered: make(chan struct{}, 1)}
		dedup := testfake.NewDeduplicator()
		h.startRouter(welcomeHandler(mailer, dedup))
		h.startRouter(welcomeHandler(mailer, dedup))

		first := h.publishAsync(e)
		second := h.publishAsync(e)

		select {
		case <-mailer.Entered:
		case <-time.After(waitTimeout):
			t.Fatal("no email was attempted")
		}
		// One run holds the key while its email is on its way; the other has
		// entered the deduplicator and waits for it.
		require.Eventually(t, func() bool { return dedup.Calls() >= 2 }, waitTimeout, time.Millisecond)
		close(mailer.Gate)
		h.wait(first, "first publish")
		h.wait(second, "second publish")

		assert.Equal(t, 4, dedup.Calls(), "2 publishes x 2 instances")
		assert.Len(t, mailer.Mails(), 1)
		assert.Equal(t, 1, mailer.Attempts())
	})

	t.Run("points", func(t *testing.T) {
		h := newHarness(t)
		// Each grant waits until both instances grant at the same time: the
		// test only passes if the two deliveries really run concurrently.
		ledger := &testfake.Ledger{Together: 2}
		h.startRouter(pointsHandler(ledger, 100))
		h.startRouter(pointsHandler(ledger, 100))

		first := h.publishAsync(e)
		second := h.publishAsync(e)
		h.wait(first, "first publish")
		h.wait(second, "second publish")

		assert.Equal(t, 4, ledger.Grants(), "2 publishes x 2 instances")
		assert.Equal(t, []domain.PointsEntry{signupEntry(100)}, ledger.Of("user-1"))
	})
}

// A message of version 1, published by an older build and still on the
// transport, reaches its handler through the upcaster.
func TestNewRouter_ReadsVersion1Messages(t *testing.T) {
	v1 := func(name, payload string) *message.Message {
		msg := message.NewMessage(uuid.NewString(), []byte(payload))
		msg.Metadata.Set("name", name)
		msg.Metadata.Set(transport.SchemaVersionKey, "1")
		return msg
	}

	// The welcome email goes out in the default language.
	t.Run("UserRegistered", func(t *testing.T) {
		h := newHarness(t)
		mailer := &testfake.Mailer{}
		h.startRouter(welcomeHandler(mailer, testfake.NewDeduplicator()))

		h.publishMessage(v1("UserRegistered",
			`{"user_id":"user-1","name":"Ada","email":"ada@example.com","registered_at":"2024-05-06T05:08:09Z"}`))

		mails := mailer.Mails()
		require.Len(t, mails, 1)
		assert.Equal(t, "Welcome to onboard", mails[0].Subject)
		assert.True(t, strings.HasPrefix(mails[0].Body, "Hello,"), mails[0].Body)
	})

	// An EmailChanged of version 1 says no address number: the new address
	// gets its email, but its link, of number 0, never verifies (the user
	// asks for a new one), rather than a guessed number's.
	t.Run("EmailChanged", func(t *testing.T) {
		h := newHarness(t)
		mailer := &testfake.Mailer{}
		h.startRouter(cqrs.NewEventHandler(event.SendNewAddressEmailName,
			event.NewSendNewAddressEmail(mailer, testfake.NewDeduplicator(), testLinks).Handle))

		h.publishMessageOn(transport.EventTopic("EmailChanged"), v1("EmailChanged", `{"user_id":"user-1",`+
			`"old_email":"ada@example.com","new_email":"lovelace@example.org","locale":"en","changed_at":"2024-06-01T10:00:00Z"}`))

		mails := mailer.Mails()
		require.Len(t, mails, 1)
		assert.Equal(t, "lovelace@example.org", mails[0].To)
		token := linkToken(t, mails[0].Body)
		changedAt := time.Date(2024, 6, 1, 10, 0, 0, 0, time.UTC)
		for number := range 4 {
			subject := domain.TokenSubject{UserID: "user-1", EmailKey: "lovelace@example.org", EmailNumber: number}
			assert.ErrorIs(t, testLinks.Key.Check(subject, token, changedAt, testLinks.TTL),
				domain.ErrInvalidToken, "number %d", number)
		}
	})
}
