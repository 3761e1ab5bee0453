package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/onboard/onboard/domain"
)

// RequestPasswordReset asks for a password reset link to an address, from
// a client address (the email budget's key).
type RequestPasswordReset struct {
	Email  string
	Client string
}

// RequestPasswordResetHandler handles RequestPasswordReset.
type RequestPasswordResetHandler struct {
	credentials Credentials
	users       UserRepository
	emails      EmailBudget
	now         func() time.Time
}

// NewRequestPasswordResetHandler returns the handler; emails nil counts
// nothing, now defaults to time.Now.
func NewRequestPasswordResetHandler(credentials Credentials, users UserRepository, emails EmailBudget,
	now func() time.Time) *RequestPasswordResetHandler {
	if now == nil {
		now = time.Now
	}
	if emails == nil {
		emails = NoEmailBudget{}
	}
	return &RequestPasswordResetHandler{credentials: credentials, users: users, emails: emails, now: now}
}

// Handle records PasswordResetRequested for the address's owner, whose
// handler sends the link. It answers the same whether or not the address
// is registered: the budget of the address and the client is spent either
// way, and an unknown address is no error.
func (h *RequestPasswordResetHandler) Handle(ctx context.Context, cmd RequestPasswordReset) error {
	if err := h.emails.Spend(ctx, "", cmd.Client, cmd.Email); err != nil {
		return err
	}
	userID, err := h.credentials.Owner(ctx, cmd.Email)
	if errors.Is(err, domain.ErrUserNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = onUser(ctx, h.users, userID, func(u *domain.User) error {
		u.RequestPasswordReset(h.now())
		return nil
	})
	return err
}

// ResetPassword sets a new password with the token of a reset link.
type ResetPassword struct {
	UserID   string
	Token    string
	Password string
}

// PasswordChanger stores a user's new password hash with its pending
// PasswordChanged, and ends every session of the user, in one transaction.
type PasswordChanger interface {
	UserRepository
	ChangePassword(ctx context.Context, user *domain.User, passwordHash []byte) error
}

// ResetPasswordHandler handles ResetPassword.
type ResetPasswordHandler struct {
	users  PasswordChanger
	hasher PasswordHasher
	key    domain.ResetKey
	now    func() time.Time
}

// NewResetPasswordHandler returns the handler; now defaults to time.Now.
func NewResetPasswordHandler(users PasswordChanger, hasher PasswordHasher, key domain.ResetKey,
	now func() time.Time) *ResetPasswordHandler {
	if now == nil {
		now = time.Now
	}
	return &ResetPasswordHandler{users: users, hasher: hasher, key: key, now: now}
}

// Handle checks the link, then the new password against the policy,
// hashes it and stores it with PasswordChanged (and EmailVerified: the
// link was read at the address); every session of the user ends, so that
// whoever held the account before (a squatter of the address) is out.
func (h *ResetPasswordHandler) Handle(ctx context.Context, cmd ResetPassword) error {
	user, err := h.users.LoadUser(ctx, cmd.UserID)
	if err != nil {
		return err
	}
	if err := user.ResetPassword(h.key, cmd.Token, h.now()); err != nil {
		return err
	}
	if err := domain.ValidatePassword(cmd.Password, user.Name(), user.Email().String()); err != nil {
		return err
	}
	hash, err := h.hasher.Hash(ctx, cmd.Password)
	if err != nil {
		return fmt.Errorf("hash password: %w", err)
	}
	// Another write to the stream won meanwhile: check the link again on
	// the newer stream (a second use of it finds it used).
	for attempt := 1; ; attempt++ {
		err = h.users.ChangePassword(ctx, user, hash)
		if !errors.Is(err, domain.ErrVersionMismatch) || attempt == saveAttempts {
			break
		}
		if user, err = h.users.LoadUser(ctx, cmd.UserID); err != nil {
			return err
		}
		if err := user.ResetPassword(h.key, cmd.Token, h.now()); err != nil {
			return err
		}
	}
	return err
}
