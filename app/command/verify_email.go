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

// RequestVerificationEmail asks for a new verification link, from a
// client address (the email budget's key).
type RequestVerificationEmail struct {
	UserID string
	Client string
}

// RequestVerificationEmailHandler sends a user a new verification link, at
// most once a minute, within the email budget.
type RequestVerificationEmailHandler struct {
	users  UserRepository
	emails EmailBudget
	now    func() time.Time
}

// NewRequestVerificationEmailHandler returns the handler; now defaults to
// time.Now.
// emails nil counts nothing.
func NewRequestVerificationEmailHandler(users UserRepository, emails EmailBudget, now func() time.Time) *RequestVerificationEmailHandler {
	if now == nil {
		now = time.Now
	}
	if emails == nil {
		emails = NoEmailBudget{}
	}
	return &RequestVerificationEmailHandler{users: users, emails: emails, now: now}
}

// Handle records VerificationEmailRequested, whose handler sends the email.
func (h *RequestVerificationEmailHandler) Handle(ctx context.Context, cmd RequestVerificationEmail) (*domain.User, error) {
	spent := false
	return onUser(ctx, h.users, cmd.UserID, func(u *domain.User) error {
		if err := u.RequestVerificationEmail(h.now()); err != nil || spent {
			return err
		}
		spent = true // once, however often a lost race redoes the decision
		return h.emails.Spend(ctx, u.ID(), cmd.Client, u.Email().String())
	})
}
