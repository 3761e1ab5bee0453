// Package query holds onboard's read-side use cases.
package query

import (
	"context"

	"github.com/onboard/onboard/domain"
)

// UserStream loads a user's events from the event store.
type UserStream interface {
	LoadUser(ctx context.Context, id string) (*domain.User, error)
}

// PointsLedger reads a user's points entries.
type PointsLedger interface {
	Entries(ctx context.Context, userID string) ([]domain.PointsEntry, error)
}

// UserByIDHandler reads a user straight from its event stream, so a user is
// readable as soon as its registration committed.
type UserByIDHandler struct{ users UserStream }

// NewUserByIDHandler returns the handler.
func NewUserByIDHandler(users UserStream) UserByIDHandler { return UserByIDHandler{users: users} }

// Handle returns the user, or domain.ErrUserNotFound.
func (h UserByIDHandler) Handle(ctx context.Context, id string) (*domain.User, error) {
	return h.users.LoadUser(ctx, id)
}

// Points is a user's balance with the entries that make it.
type Points struct {
	UserID  string
	Balance int
	Entries []domain.PointsEntry
}

// PointsBalanceHandler reads a user's points.
type PointsBalanceHandler struct {
	users  UserStream
	ledger PointsLedger
}

// NewPointsBalanceHandler returns the handler.
func NewPointsBalanceHandler(users UserStream, ledger PointsLedger) PointsBalanceHandler {
	return PointsBalanceHandler{users: users, ledger: ledger}
}

// Handle returns the user's points, or domain.ErrUserNotFound.
func (h PointsBalanceHandler) Handle(ctx context.Context, userID string) (Points, error) {
	if _, err := h.users.LoadUser(ctx, userID); err != nil {
		return Points{}, err
	}
	entries, err := h.ledger.Entries(ctx, userID)
	if err != nil {
		return Points{}, err
	}
	return Points{UserID: userID, Balance: domain.Balance(entries), Entries: entries}, nil
}
