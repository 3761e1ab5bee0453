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
// store and publishes them into the outbox; and stores session, when
// given (Sessions.Open), the user's first.
type RegistrationStore interface {
	Register(ctx context.Context, user *domain.User, passwordHash []byte, session *Session) error
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
	// sessions opens the sessions of RegisterSignedIn; nil: none.
	sessions Sessions
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
	user, _, err := h.register(ctx, cmd, false)
	return user, err
}

// WithSessions returns the handler opening the sessions of
// RegisterSignedIn in sessions.
func (h *RegisterUserHandler) WithSessions(sessions Sessions) *RegisterUserHandler {
	signedIn := *h
	signedIn.sessions = sessions
	return &signedIn
}

// RegisterSignedIn is Register that also opens a session of the user: a
// new registration stores it in its own transaction, a repeat of one
// opens another.
func (h *RegisterUserHandler) RegisterSignedIn(ctx context.Context, cmd *RegisterUser) (*domain.User, Session, error) {
	user, session, err := h.register(ctx, cmd, true)
	if err != nil {
		return nil, Session{}, err
	}
	if session == nil { // a repeat
		started, err := h.sessions.Start(ctx, user.ID(), nil)
		return user, started, err
	}
	return user, *session, nil
}

// register registers the user of cmd, opening its session if signIn, or
// accepts cmd as a repeat of the registration that made it (no session).
func (h *RegisterUserHandler) register(ctx context.Context, cmd *RegisterUser, signIn bool) (*domain.User, *Session, error) {
	user, err := domain.NewUser(cmd.UserID, cmd.Name, cmd.Email, cmd.Password, cmd.Locale, h.now())
	if err != nil {
		return nil, nil, err
	}
	hash, err := h.hasher.Hash(ctx, cmd.Password)
	if err != nil {
		return nil, nil, fmt.Errorf("hash password: %w", err)
	}
	var session *Session
	if signIn {
		if h.sessions == nil {
			return nil, nil, errors.New("register and sign in: the handler has no sessions")
		}
		opened, err := h.sessions.Open(user.ID())
		if err != nil {
			return nil, nil, err
		}
		session = &opened
	}
	err = h.store.Register(ctx, user, hash, session)
	if errors.Is(err, ErrAlreadyRegistered) {
		user, err = h.checkSameRequest(ctx, user, cmd.Password, cmd.Client)
		return user, nil, err
	}
	if err != nil {
		return nil, nil, err
	}
	// The welcome email goes whatever the budget says; it counts against
	// the emails that may follow to the address. The user is registered:
	// a count that fails now must not answer its registration with an
	// error (the emails that follow are still counted and bounded).
	_ = h.emails.Count(ctx, user.ID(), cmd.Client, user.Email().String())
	return user, session, nil
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
