package event

import (
	"context"
	"fmt"
	"time"

	"github.com/onboard/onboard/domain"
)

// PointsGranter adds an entry to a user's ledger; a second entry with the
// same reason for the same user is a no-op.
type PointsGranter interface {
	Grant(ctx context.Context, userID string, entry domain.PointsEntry) error
}

// SeedSignupPointsName is the handler's name, consumer group and queue name.
const SeedSignupPointsName = "SeedSignupPointsOnUserRegistered"

// SeedSignupPoints grants the signup points once per user. It reads the
// event's user id alone, no personal field: the service's router hands it
// the event as stored, without reading the user's key.
type SeedSignupPoints struct {
	ledger PointsGranter
	points int
	now    func() time.Time
}

// NewSeedSignupPoints returns the handler granting points on registration.
func NewSeedSignupPoints(ledger PointsGranter, points int, now func() time.Time) SeedSignupPoints {
	if now == nil {
		now = time.Now
	}
	return SeedSignupPoints{ledger: ledger, points: points, now: now}
}

// Handle grants the signup points unless the user already has them.
func (h SeedSignupPoints) Handle(ctx context.Context, e *domain.UserRegistered) error {
	if e.UserID == "" {
		return fmt.Errorf("%s: event without user id", SeedSignupPointsName)
	}
	return h.ledger.Grant(ctx, e.UserID, domain.PointsEntry{
		Amount:    h.points,
		Reason:    domain.ReasonSignup,
		GrantedAt: h.now().UTC().Truncate(time.Microsecond),
	})
}
