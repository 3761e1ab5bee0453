package command

import (
	"context"
	"errors"
	"time"

	"github.com/onboard/onboard/domain"
)

// EraseUser erases a user (GDPR art. 17), asked for by the user, who gives
// the password again, or by the operator.
type EraseUser struct {
	UserID string
	// Password is the user's, checked unless ByOperator.
	Password   string
	ByOperator bool
	// Client is the sender's address, the guess limits' key.
	Client string
}

// UserEraser commits a user's pending UserErased, and with it destroys
// the user's key, releases its address and deletes its credential and
// sessions.
type UserEraser interface {
	RegisteredUser(ctx context.Context, id string) (*domain.User, []byte, error)
	Erase(ctx context.Context, user *domain.User) error
}

// EraseUserHandler handles EraseUser.
type EraseUserHandler struct {
	users     UserEraser
	passwords passwordCheck
	now       func() time.Time
}

// NewEraseUserHandler returns the handler; now nil is time.Now.
func NewEraseUserHandler(users UserEraser, hasher PasswordHasher, guesses PasswordGuesses, now func() time.Time) *EraseUserHandler {
	if now == nil {
		now = time.Now
	}
	return &EraseUserHandler{users: users, passwords: passwordCheck{hasher: hasher, guesses: guesses}, now: now}
}

// Handle checks the user's password, counted by the guess limits, unless
// the operator asks, and erases the user: domain.ErrUserNotFound for an
// unknown id, domain.ErrUserErased for one erased already. A write to the
// user's stream meanwhile makes it try again on the newer stream.
func (h *EraseUserHandler) Handle(ctx context.Context, cmd EraseUser) error {
	for attempt := 1; ; attempt++ {
		user, hash, err := h.users.RegisteredUser(ctx, cmd.UserID)
		if err != nil {
			return err
		}
		if attempt == 1 && !cmd.ByOperator {
			if err := h.passwords.check(ctx, user.ID(), cmd.Client, hash, cmd.Password); err != nil {
				return err
			}
		}
		by := domain.ErasedByUser
		if cmd.ByOperator {
			by = domain.ErasedByOperator
		}
		if err := user.Erase(by, h.now()); err != nil {
			return err
		}
		err = h.users.Erase(ctx, user)
		if errors.Is(err, domain.ErrVersionMismatch) && attempt < saveAttempts {
			continue
		}
		return err
	}
}
