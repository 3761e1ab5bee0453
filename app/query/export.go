package query

import (
	"context"
	"time"

	"github.com/onboard/onboard/domain"
)

// RecordedEvent is an event of a user's stream as the event store keeps
// it, its personal fields opened.
type RecordedEvent struct {
	ID   string
	Type string
	// StreamVersion is its place in the stream, from 1.
	StreamVersion int
	// SchemaVersion is the version of the JSON form it was stored at;
	// Event is in the form this build reads.
	SchemaVersion int
	RecordedAt    time.Time
	Event         domain.Event
}

// UserStream reads a user's stream.
type UserStream interface {
	// Recorded returns the stream's events in order, or
	// domain.ErrUserNotFound.
	Recorded(ctx context.Context, userID string) ([]RecordedEvent, error)
}

// UserExport is everything onboard keeps of a user's personal data (GDPR
// art. 15 and 20): the user, its points and every event of its stream.
type UserExport struct {
	User   User
	Points Points
	Events []RecordedEvent
}

// ExportUserHandler exports a user.
type ExportUserHandler struct {
	users  UserReadModel
	stream UserStream
	ledger PointsLedger
}

// NewExportUserHandler returns the handler.
func NewExportUserHandler(users UserReadModel, stream UserStream, ledger PointsLedger) ExportUserHandler {
	return ExportUserHandler{users: users, stream: stream, ledger: ledger}
}

// Handle returns the user's export: domain.ErrUserNotFound for an unknown
// id, domain.ErrUserErased for an erased user.
func (h ExportUserHandler) Handle(ctx context.Context, id string) (UserExport, error) {
	user, err := h.users.UserByID(ctx, id)
	if err != nil {
		return UserExport{}, err
	}
	events, err := h.stream.Recorded(ctx, id)
	if err != nil {
		return UserExport{}, err
	}
	entries, err := h.ledger.Entries(ctx, id)
	if err != nil {
		return UserExport{}, err
	}
	points := Points{UserID: id, Balance: domain.Balance(entries), Entries: entries}
	return UserExport{User: user, Points: points, Events: events}, nil
}
