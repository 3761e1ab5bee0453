// Package command holds onboard's write-side use cases.
package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/onboard/onboard/domain"
)

// RegisterUser asks to register a user. The caller chooses the id, so that a
// command delivered twice registers one user.
type RegisterUser struct {
	UserID   string `json:"user_id"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	Password string `json:"password"`
	// Locale is the language of the user's emails; empty: the default.
	Locale string `json:"locale,omitempty"`
	// Client is the sender's address, the email budget's key; not sent
	// over the command bus.
	Client string `json:"-"`
}

// ErrAlreadyRegistered is returned by a RegistrationStore when the very same user
// (same id, same email) is registered again: a redelivered command.
var ErrAlreadyRegistered = errors.New("user already registered")

// ErrOverloaded is returned when the service cannot take one more
// registration now; the same request may pass a moment later.
var ErrOverloaded = errors.New("overloaded")

// RegistrationStore stores a new user in one transaction: it reserves the email,
// stores the credential, appends the user's pending events to the event
// store and publishes them into the outbox.
type RegistrationStore interface {
	Register(ctx context.Context, user *domain.User, passwordHash []byte) error
	// RegisteredUser returns a registered user and its password hash.
	RegisteredUser(ctx context.Context, id string) (*domain.User, []byte, error)
}

// PasswordHasher turns a password into a slow, salted hash.
type PasswordHasher interface {
	Hash(ctx context.Context, password string) ([]byte, error)
	// Matches tells whether password is the one hash was made from.
	Matches(ctx context.Context, hash []byte, password string) (bool, error)
}

// RegisterUserHandler handles RegisterUser, from HTTP or from the command bus.
type RegisterUserHandler struct {
	store     RegistrationStore
	hasher    PasswordHasher
	passwords passwordCheck
	emails    EmailBudget
	now       func() time.Time
}

// NewRegisterUserHandler returns the handler; now defaults to time.Now.
// A repeated registration's password is compared under guesses (nil: no
// limit); the welcome email is counted in emails (nil: nowhere), never
// refused by it.
func NewRegisterUserHandler(store RegistrationStore, hasher PasswordHasher, guesses PasswordGuesses, emails EmailBudget,
	now func() time.Time) *RegisterUserHandler {
	if now == nil {
		now = time.Now
	}
	if guesses == nil {
		guesses = NoPasswordGuesses{}
	}
	if emails == nil {
		emails = NoEmailBudget{}
	}
	return &RegisterUserHandler{store: store, hasher: hasher, emails: emails, now: now,
		passwords: passwordCheck{hasher: hasher, guesses: guesses}}
}

// Handle validates the command, hashes the password and registers the user.
// Registering the same user twice is a no-op; the same id with another
// name or password is domain.ErrIdempotencyKeyReused.
func (h *RegisterUserHandler) Handle(ctx context.Context, cmd *RegisterUser) error {
	_, err := h.Register(ctx, cmd)
	return err
}

// Register is Handle returning the user as registered: by this command, or
// by the earlier one it repeats.
func (h *RegisterUserHandler) Register(ctx context.Context, cmd *RegisterUser) (*domain.User, error) {
	user, err := domain.NewUser(cmd.UserID, cmd.Name, cmd.Email, cmd.Password, cmd.Locale, h.now())
	if err != nil {
		return nil, err
	}
	hash, err := h.hasher.Hash(ctx, cmd.Password)
	if err != nil {
		return nil, fmt.Errorf("hash password: %w", err)
	}
	err = h.store.Register(ctx, user, hash)
	if errors.Is(err, ErrAlreadyRegistered) {
		return h.checkSameRequest(ctx, user, cmd.Password, cmd.Client)
	}
	if err != nil {
		return nil, err
	}
	// The welcome email goes whatever the budget says; it counts against
	// the emails that may follow to the address. The user is registered:
	// a count that fails now must not answer its registration with an
	// error (the emails that follow are still counted and bounded).
	_ = h.emails.Count(ctx, user.ID(), cmd.Client, user.Email().String())
	return user, nil
}

// checkSameRequest accepts a repeat of the registration that created the
// user (same id and email), unless its name or password differ. Its
// password is a guess like any other: a repeat answers with a session.
func (h *RegisterUserHandler) checkSameRequest(ctx context.Context, user *domain.User, password, client string) (*domain.User, error) {
	registered, hash, err := h.store.RegisteredUser(ctx, user.ID())
	if err != nil {
		return nil, fmt.Errorf("read the registered user: %w", err)
	}
	if registered.Name() != user.Name() {
		return nil, domain.ErrIdempotencyKeyReused
	}
	err = h.passwords.check(ctx, registered.ID(), client, hash, password)
	if errors.Is(err, domain.ErrWrongPassword) {
		return nil, domain.ErrIdempotencyKeyReused
	}
	if err != nil {
		return nil, err
	}
	return registered, nil
}
