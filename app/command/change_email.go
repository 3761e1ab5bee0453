package command

import (
	"context"
	"fmt"
	"time"

	"github.com/onboard/onboard/domain"
)

// ChangeEmail moves a user to another address. The user's password is
// required, and the version the client last read: a change made against
// an older version is refused.
type ChangeEmail struct {
	UserID          string
	Email           string
	Password        string
	ExpectedVersion int
}

// EmailChanger saves a user whose pending EmailChanged leaves the address
// with key oldKey, reserving the new one in the same transaction.
type EmailChanger interface {
	RegisteredUser(ctx context.Context, id string) (*domain.User, []byte, error)
	ChangeEmail(ctx context.Context, user *domain.User, oldKey string) error
}

// PasswordFailures counts a user's wrong passwords in a window.
type PasswordFailures interface {
	// Recent returns the failures of the current window and its end.
	Recent(ctx context.Context, userID string) (int, time.Time, error)
	Add(ctx context.Context, userID string) error
	Reset(ctx context.Context, userID string) error
}

// Wrong passwords allowed per user in PasswordFailureWindow; beyond, the
// user's changes are refused until the window ends, before any hash.
const (
	MaxPasswordFailures   = 5
	PasswordFailureWindow = 15 * time.Minute
)

// ChangeEmailHandler handles ChangeEmail.
type ChangeEmailHandler struct {
	users    EmailChanger
	hasher   PasswordHasher
	failures PasswordFailures
	now      func() time.Time
}

// NewChangeEmailHandler returns the handler; now defaults to time.Now.
func NewChangeEmailHandler(users EmailChanger, hasher PasswordHasher, failures PasswordFailures,
	now func() time.Time) *ChangeEmailHandler {
	if now == nil {
		now = time.Now
	}
	return &ChangeEmailHandler{users: users, hasher: hasher, failures: failures, now: now}
}

// Handle checks the version, the new address and the password, in that
// order, cheapest first, and records EmailChanged.
func (h *ChangeEmailHandler) Handle(ctx context.Context, cmd ChangeEmail) (*domain.User, error) {
	user, hash, err := h.users.RegisteredUser(ctx, cmd.UserID)
	if err != nil {
		return nil, err
	}
	if user.Version() != cmd.ExpectedVersion {
		return nil, domain.ErrVersionMismatch
	}
	oldKey := user.Email().Key()
	if err := user.ChangeEmail(cmd.Email, h.now()); err != nil {
		return nil, err
	}
	if err := h.checkPassword(ctx, user.ID(), hash, cmd.Password); err != nil {
		return nil, err
	}
	if err := h.users.ChangeEmail(ctx, user, oldKey); err != nil {
		return nil, err
	}
	return user, nil
}

// checkPassword refuses a user with too many recent wrong passwords before
// hashing, and counts a wrong one.
func (h *ChangeEmailHandler) checkPassword(ctx context.Context, userID string, hash []byte, password string) error {
	failures, windowEnds, err := h.failures.Recent(ctx, userID)
	if err != nil {
		return err
	}
	if failures >= MaxPasswordFailures {
		return domain.TooManyRequests("too many wrong passwords for this user, try again later", time.Until(windowEnds))
	}
	same, err := h.hasher.Matches(ctx, hash, password)
	if err != nil {
		return fmt.Errorf("check the password: %w", err)
	}
	if !same {
		if err := h.failures.Add(ctx, userID); err != nil {
			return err
		}
		return domain.ErrWrongPassword
	}
	if failures > 0 {
		return h.failures.Reset(ctx, userID)
	}
	return nil
}
