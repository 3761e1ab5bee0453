// Package query holds onboard's read-side use cases.
package query

import (
	"context"
	"time"

	"github.com/onboard/onboard/domain"
)

// User is a user as the users read model shows it.
type User struct {
	ID            string
	Name          string
	Email         string
	EmailVerified bool
	Locale        string
	RegisteredAt  time.Time
	// Version is the version of the user's stream the row shows.
	Version int
}

// UserOf is the read model's view of a user just loaded or changed.
func UserOf(u *domain.User) User {
	return User{ID: u.ID(), Name: u.Name(), Email: u.Email().String(), EmailVerified: u.EmailVerified(),
		Locale: u.Locale(), RegisteredAt: u.RegisteredAt(), Version: u.Version()}
}

// UserReadModel reads the users read model, which the transaction of each
// write updates: a user is readable as soon as its write committed.
type UserReadModel interface {
	// UserByID returns the user, or domain.ErrUserNotFound.
	UserByID(ctx context.Context, id string) (User, error)
	// UserByEmail returns the user holding the address, in any letter
	// case, or domain.ErrUserNotFound.
	UserByEmail(ctx context.Context, email string) (User, error)
}

// PointsLedger reads a user's points entries.
type PointsLedger interface {
	Entries(ctx context.Context, userID string) ([]domain.PointsEntry, error)
}

// UserByIDHandler reads a user.
type UserByIDHandler struct{ users UserReadModel }

// NewUserByIDHandler returns the handler.
func NewUserByIDHandler(users UserReadModel) UserByIDHandler { return UserByIDHandler{users: users} }

// Handle returns the user, or domain.ErrUserNotFound.
func (h UserByIDHandler) Handle(ctx context.Context, id string) (User, error) {
	return h.users.UserByID(ctx, id)
}

// UserByEmailHandler finds a user by address, for operators.
type UserByEmailHandler struct{ users UserReadModel }

// NewUserByEmailHandler returns the handler.
func NewUserByEmailHandler(users UserReadModel) UserByEmailHandler {
	return UserByEmailHandler{users: users}
}

// Handle returns the user holding the address, or domain.ErrUserNotFound.
func (h UserByEmailHandler) Handle(ctx context.Context, email string) (User, error) {
	return h.users.UserByEmail(ctx, email)
}

// Points is a user's balance with the entries that make it.
type Points struct {
	UserID  string
	Balance int
	Entries []domain.PointsEntry
}

// PointsBalanceHandler reads a user's points.
type PointsBalanceHandler struct {
	users  UserReadModel
	ledger PointsLedger
}

// NewPointsBalanceHandler returns the handler.
func NewPointsBalanceHandler(users UserReadModel, ledger PointsLedger) PointsBalanceHandler {
	return PointsBalanceHandler{users: users, ledger: ledger}
}

// Handle returns the user's points, or domain.ErrUserNotFound.
func (h PointsBalanceHandler) Handle(ctx context.Context, userID string) (Points, error) {
	if _, err := h.users.UserByID(ctx, userID); err != nil {
		return Points{}, err
	}
	entries, err := h.ledger.Entries(ctx, userID)
	if err != nil {
		return Points{}, err
	}
	return Points{UserID: userID, Balance: domain.Balance(entries), Entries: entries}, nil
}
