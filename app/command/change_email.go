package command

import (
	"context"
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
	// Client is the sender's address, the guess limits' key.
	Client string
	// Session is the token of the session that asks: every other session
	// of the user ends with the change.
	Session string
}

// EmailChanger saves a user whose pending EmailChanged leaves the address
// with key oldKey, reserving the new one and ending every session of the
// user but keepSession's in the same transaction.
type EmailChanger interface {
	RegisteredUser(ctx context.Context, id string) (*domain.User, []byte, error)
	ChangeEmail(ctx context.Context, user *domain.User, oldKey, keepSession string) error
}

// AnyVersion is the ExpectedVersion of a change made whatever the
// user's current version (If-Match: *). The zero value matches none:
// versions start at 1.
const AnyVersion = -1

// ChangeEmailHandler handles ChangeEmail.
type ChangeEmailHandler struct {
	users     EmailChanger
	passwords passwordCheck
	emails    EmailBudget
	now       func() time.Time
}

// ChangeEmailDeps are what ChangeEmailHandler works with; Emails nil
// counts nothing, Now defaults to time.Now.
type ChangeEmailDeps struct {
	Users   EmailChanger
	Hasher  PasswordHasher
	Guesses PasswordGuesses
	Emails  EmailBudget
	Now     func() time.Time
}

// NewChangeEmailHandler returns the handler.
func NewChangeEmailHandler(deps ChangeEmailDeps) *ChangeEmailHandler {
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Emails == nil {
		deps.Emails = NoEmailBudget{}
	}
	return &ChangeEmailHandler{users: deps.Users, passwords: passwordCheck{hasher: deps.Hasher, guesses: deps.Guesses},
		emails: deps.Emails, now: deps.Now}
}

// Handle checks the version, the new address and the password, in that
// order, cheapest first, spends the email budget of the link to the new
// address and the notice to the old one, and records EmailChanged. The
// budget is spent before the new address is reserved: a taken address
// (409) costs it too, so the answers cannot probe many addresses.
func (h *ChangeEmailHandler) Handle(ctx context.Context, cmd ChangeEmail) (*domain.User, error) {
	user, hash, err := h.users.RegisteredUser(ctx, cmd.UserID)
	if err != nil {
		return nil, err
	}
	if cmd.ExpectedVersion != AnyVersion && user.Version() != cmd.ExpectedVersion {
		return nil, domain.ErrVersionMismatch
	}
	oldKey, oldEmail := user.Email().Key(), user.Email().String()
	if err := user.ChangeEmail(cmd.Email, h.now()); err != nil {
		return nil, err
	}
	if err := h.passwords.check(ctx, user.ID(), cmd.Client, hash, cmd.Password); err != nil {
		return nil, err
	}
	if err := h.emails.Spend(ctx, user.ID(), cmd.Client, user.Email().String(), oldEmail); err != nil {
		return nil, err
	}
	// Whoever else was signed in followed the old address: out, with the
	// change.
	if err := h.users.ChangeEmail(ctx, user, oldKey, cmd.Session); err != nil {
		return nil, err
	}
	return user, nil
}
