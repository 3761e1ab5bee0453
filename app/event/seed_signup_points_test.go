package event_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
)

var grantedAt = time.Date(2024, 5, 6, 7, 8, 10, 987654321, time.FixedZone("CEST", 2*60*60))

func pointsHandler(ledger event.PointsGranter, points int) event.SeedSignupPoints {
	return event.NewSeedSignupPoints(ledger, points, func() time.Time { return grantedAt })
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
			ledger := &testfake.Ledger{}
			handler := pointsHandler(ledger, points)

			for _, e := range []domain.UserRegistered{
				registered("user-1", "Ada Lovelace", "ada@example.com"),
				registered("user-2", "Grace Hopper", "grace@example.com"),
			} {
				require.NoError(t, handler.Handle(delivery("message-"+e.UserID), &e))
			}

			assert.Equal(t, 2, ledger.Grants())
			for _, user := range []string{"user-1", "user-2"} {
				entries := ledger.Of(user)
				assert.Equal(t, []domain.PointsEntry{signupEntry(points)}, entries, user)
				assert.Equal(t, points, domain.Balance(entries))
			}
		})
	}
}

func TestSeedSignupPoints_DefaultClockIsNowInUTC(t *testing.T) {
	ledger := &testfake.Ledger{}
	before := time.Now()
	require.NoError(t, event.NewSeedSignupPoints(ledger, 100, nil).Handle(context.Background(),
		&domain.UserRegistered{UserID: "user-1"}))
	after := time.Now()

	entries := ledger.Of("user-1")
	require.Len(t, entries, 1)
	at := entries[0].GrantedAt
	assert.Equal(t, time.UTC, at.Location())
	assert.False(t, at.Before(before.Truncate(time.Microsecond)), "granted at %v, before %v", at, before)
	assert.False(t, at.After(after), "granted at %v, after %v", at, after)
}

func TestSeedSignupPoints_Redelivery(t *testing.T) {
	for _, tt := range redeliveries() {
		t.Run(tt.name, func(t *testing.T) {
			ledger := &testfake.Ledger{}
			handler := pointsHandler(ledger, 100)

			tt.deliver(t, func(ctx context.Context, e domain.UserRegistered) {
				require.NoError(t, handler.Handle(ctx, &e))
			}, registered("user-1", "Ada Lovelace", "ada@example.com"))

			assert.Equal(t, 2, ledger.Grants(), "the redelivery reached the ledger")
			assert.Equal(t, []domain.PointsEntry{signupEntry(100)}, ledger.Of("user-1"))
		})
	}
}

// Deliveries that run at once, as two instances of the service sharing the
// ledger do, grant the points once.
func TestSeedSignupPoints_ConcurrentDeliveries(t *testing.T) {
	const deliveries = 4 // 2 publishes x 2 instances
	// Each grant waits until every delivery grants at the same time: the
	// test only passes if they really run concurrently.
	ledger := &testfake.Ledger{Together: deliveries}
	handler := pointsHandler(ledger, 100)
	e := registered("user-1", "Ada Lovelace", "ada@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	errs := make([]error, deliveries)
	var wg sync.WaitGroup
	for i := range deliveries {
		wg.Go(func() {
			e := e
			errs[i] = handler.Handle(app.WithEventID(ctx, "message-1"), &e)
		})
	}
	wg.Wait()

	for _, err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, deliveries, ledger.Grants())
	assert.Equal(t, []domain.PointsEntry{signupEntry(100)}, ledger.Of("user-1"))
}

// A failed grant returns the ledger's error, its class intact (an outage:
// retried at once); the next try grants.
func TestSeedSignupPoints_RetriesAFailedGrant(t *testing.T) {
	ledger := &testfake.Ledger{Failures: 1, FailWith: errLedgerDown}
	handler := pointsHandler(ledger, 100)
	e := registered("user-1", "Ada Lovelace", "ada@example.com")

	assertClass(t, handler.Handle(delivery("m-1"), &e), errLedgerDown, app.FailureOutage)
	assert.Empty(t, ledger.Of("user-1"))
	require.NoError(t, handler.Handle(delivery("m-1"), &e))

	assert.Equal(t, []domain.PointsEntry{signupEntry(100)}, ledger.Of("user-1"))
}

func TestSeedSignupPoints_RejectsEventWithoutUserID(t *testing.T) {
	ledger := &testfake.Ledger{}
	e := registered("", "Ada Lovelace", "ada@example.com")

	err := event.NewSeedSignupPoints(ledger, 100, nil).Handle(context.Background(), &e)

	require.Error(t, err)
	assert.Contains(t, err.Error(), event.SeedSignupPointsName)
	assert.Contains(t, err.Error(), "without user id", "the reason the message is poisoned with")
	assert.Zero(t, ledger.Grants(), "nothing granted")
	assert.Empty(t, ledger.Of(""))
}
