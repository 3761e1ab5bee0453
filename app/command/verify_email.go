package command

import (
	"context"
	"time"

	"github.com/onboard/onboard/domain"
)

// VerifyEmail proves, with the token of a verification link, that the user
// reads their address.
type VerifyEmail struct {
	UserID string
	Token  string
}

// VerifyEmailHandler handles VerifyEmail.
type VerifyEmailHandler struct {
	users UserRepository
	key   domain.VerificationKey
	ttl   time.Duration
	now   func() time.Time
}

// NewVerifyEmailHandler returns the handler of the tokens key signs, which
// verify for ttl (VERIFY_TTL) at most; now defaults to time.Now.
func NewVerifyEmailHandler(users UserRepository, key domain.VerificationKey, ttl time.Duration,
	now func() time.Time) *VerifyEmailHandler {
	if now == nil {
		now = time.Now
	}
	return &VerifyEmailHandler{users: users, key: key, ttl: ttl, now: now}
}

// Handle records EmailVerified, once, and returns the user.
func (h *VerifyEmailHandler) Handle(ctx context.Context, cmd VerifyEmail) (*domain.User, error) {
	return onUser(ctx, h.users, cmd.UserID, func(u *domain.User) error {
		return u.VerifyEmail(h.key, h.ttl, cmd.Token, h.now())
	})
}

// RequestVerificationEmailHandler sends a user a new verification link, at
// most once a minute.
type RequestVerificationEmailHandler struct {
	users UserRepository
	now   func() time.Time
}

// NewRequestVerificationEmailHandler returns the handler; now defaults to
// time.Now.
func NewRequestVerificationEmailHandler(users UserRepository, now func() time.Time) *RequestVerificationEmailHandler {
	if now == nil {
		now = time.Now
	}
	return &RequestVerificationEmailHandler{users: users, now: now}
}

// Handle records VerificationEmailRequested, whose handler sends the email.
func (h *RequestVerificationEmailHandler) Handle(ctx context.Context, userID string) (*domain.User, error) {
	return onUser(ctx, h.users, userID, func(u *domain.User) error {
		return u.RequestVerificationEmail(h.now())
	})
}
