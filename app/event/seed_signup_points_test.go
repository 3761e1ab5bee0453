package event_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/components/cqrs"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
)

// memLedger is an in-memory PointsGranter: one entry per (user, reason), a
// second grant of the same reason is a no-op. failures makes the first grants
// fail; barrier, when set, holds each grant until that many grants are in
// flight at once.
type memLedger struct {
	mu       sync.Mutex
	entries  map[string][]domain.PointsEntry
	grants   int
	failures int

	barrier  int
	arrived  int
	together chan struct{}
}

// errLedgerDown is an outage, as a database that does not answer is:
// retried at once, then nacked and redelivered until it passes.
var errLedgerDown error = outage("ledger: connection reset")

func newMemLedger() *memLedger {
	return &memLedger{entries: map[string][]domain.PointsEntry{}, together: make(chan struct{})}
}

func (l *memLedger) Grant(ctx context.Context, userID string, entry domain.PointsEntry) error {
	if err := l.waitForOthers(ctx); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.grants++
	if l.grants <= l.failures {
		return errLedgerDown
	}
	for _, e := range l.entries[userID] {
		if e.Reason == entry.Reason {
			return nil
		}
	}
	l.entries[userID] = append(l.entries[userID], entry)
	return nil
}

func (l *memLedger) waitForOthers(ctx context.Context) error {
	l.mu.Lock()
	if l.barrier == 0 {
		l.mu.Unlock()
		return nil
	}
	l.arrived++
	if l.arrived == l.barrier {
		close(l.together)
	}
	l.mu.Unlock()
	select {
	case <-l.together:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *memLedger) of(userID string) []domain.PointsEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]domain.PointsEntry(nil), l.entries[userID]...)
}

func (l *memLedger) grantCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.grants
}

var grantedAt = time.Date(2024, 5, 6, 7, 8, 10, 987654321, time.FixedZone("CEST", 2*60*60))

func pointsHandler(ledger event.PointsGranter, points int) cqrs.EventHandler {
	return cqrs.NewEventHandler(event.SeedSignupPointsName,
		event.NewSeedSignupPoints(ledger, points, func() time.Time { return grantedAt }).Handle)
}

func signupEntry(points int) domain.PointsEntry {
	return domain.PointsEntry{
		Amount:    points,
		Reason:    domain.ReasonSignup,
		GrantedAt: time.Date(2024, 5, 6, 5, 8, 10, 987654000, time.UTC),
	}
}

func TestSeedSignupPoints_GrantsOncePerUser(t *testing.T) {
	for _, points := range []int{100, 250} {
		t.Run(fmt.Sprintf("%d points", points), func(t *testing.T) {
			h := newHarness(t)
			ledger := newMemLedger()
			h.startRouter(pointsHandler(ledger, points))

			h.publish(registered("user-1", "Ada Lovelace", "ada@example.com"))
			h.publish(registered("user-2", "Grace Hopper", "grace@example.com"))

			require.Eventually(t, func() bool { return ledger.grantCount() >= 2 }, waitTimeout, time.Millisecond)
			for _, user := range []string{"user-1", "user-2"} {
				entries := ledger.of(user)
				assert.Equal(t, []domain.PointsEntry{signupEntry(points)}, entries, user)
				assert.Equal(t, points, domain.Balance(entries))
			}
		})
	}
}

func TestSeedSignupPoints_DefaultClockIsNowInUTC(t *testing.T) {
	ledger := newMemLedger()
	before := time.Now()
	require.NoError(t, event.NewSeedSignupPoints(ledger, 100, nil).Handle(context.Background(),
		&domain.UserRegistered{UserID: "user-1"}))
	after := time.Now()

	entries := ledger.of("user-1")
	require.Len(t, entries, 1)
	at := entries[0].GrantedAt
	assert.Equal(t, time.UTC, at.Location())
	assert.False(t, at.Before(before.Truncate(time.Microsecond)), "granted at %v, before %v", at, before)
	assert.False(t, at.After(after), "granted at %v, after %v", at, after)
}

func TestSeedSignupPoints_Redelivery(t *testing.T) {
	for _, tt := range redeliveries() {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			ledger := newMemLedger()
			h.startRouter(pointsHandler(ledger, 100))

			tt.deliver(h, registered("user-1", "Ada Lovelace", "ada@example.com"))

			assert.Equal(t, 2, ledger.grantCount(), "the redelivery reached the handler")
			assert.Equal(t, []domain.PointsEntry{signupEntry(100)}, ledger.of("user-1"))
		})
	}
}

func TestSeedSignupPoints_ConcurrentDeliveries(t *testing.T) {
	h := newHarness(t)
	ledger := newMemLedger()
	// Each grant waits until both instances grant at the same time: the test
	// only passes if the two deliveries really run concurrently.
	ledger.barrier = 2
	h.startRouter(pointsHandler(ledger, 100))
	h.startRouter(pointsHandler(ledger, 100))
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	first := h.publishAsync(e)
	second := h.publishAsync(e)
	h.wait(first, "first publish")
	h.wait(second, "second publish")

	assert.Equal(t, 4, ledger.grantCount(), "2 publishes x 2 instances")
	assert.Equal(t, []domain.PointsEntry{signupEntry(100)}, ledger.of("user-1"))
}

func TestSeedSignupPoints_RetriesAFailedGrant(t *testing.T) {
	h := newHarness(t)
	ledger := newMemLedger()
	ledger.failures = 1
	results := &handlerResults{}
	h.startRouter(results.record(pointsHandler(ledger, 100)))

	h.publish(registered("user-1", "Ada Lovelace", "ada@example.com"))

	errs := results.all()
	require.Len(t, errs, 2, "one failed run, one retry")
	assert.ErrorIs(t, errs[0], errLedgerDown, "the handler returns the ledger's error")
	assert.NoError(t, errs[1])
	assert.Equal(t, []domain.PointsEntry{signupEntry(100)}, ledger.of("user-1"))
}

func TestSeedSignupPoints_RejectsEventWithoutUserID(t *testing.T) {
	ledger := newMemLedger()
	e := registered("", "Ada Lovelace", "ada@example.com")

	err := event.NewSeedSignupPoints(ledger, 100, nil).Handle(context.Background(), &e)
	require.Error(t, err)
	assert.Contains(t, err.Error(), event.SeedSignupPointsName)

	h := newHarness(t)
	results := &handlerResults{}
	poisoned := h.poisoned()
	h.startRouter(results.record(pointsHandler(ledger, 100)))

	done := h.publishAsync(e)
	select {
	case msg := <-poisoned:
		msg.Ack()
		assert.Contains(t, msg.Metadata.Get(middleware.ReasonForPoisonedKey), "without user id")
		assert.Equal(t, event.SeedSignupPointsName, msg.Metadata.Get(middleware.PoisonedHandlerKey))
	case <-time.After(waitTimeout):
		t.Fatal("the event without user id did not reach the poison queue")
	}
	h.wait(done, "publish")

	errs := results.all()
	require.NotEmpty(t, errs)
	for _, err := range errs {
		assert.Error(t, err)
	}
	assert.Zero(t, ledger.grantCount(), "nothing granted")
	assert.Empty(t, ledger.of(""))
}
