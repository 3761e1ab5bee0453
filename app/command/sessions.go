package command

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/onboard/onboard/domain"
)

// Session is a signed-in user's bearer token, when it opened and its
// absolute expiry.
type Session struct {
	UserID    string
	Token     string
	StartedAt time.Time
	ExpiresAt time.Time
}

// Sessions keeps sign-in sessions. A token is only ever stored as a hash.
type Sessions interface {
	// Open makes a session of the user without storing it: a
	// registration stores it in its own transaction (RegistrationStore).
	Open(userID string) (Session, error)
	// Start opens a session of the user. With checkedHash, the password
	// hash a sign-in compared, only while the user's credential holds it:
	// a password changed meanwhile gives domain.ErrInvalidCredentials.
	Start(ctx context.Context, userID string, checkedHash []byte) (Session, error)
	// User returns the user of a live session, sliding its idle timeout,
	// or domain.ErrUnauthenticated.
	User(ctx context.Context, token string) (string, error)
	// End ends the session of token; an unknown token is no error.
	End(ctx context.Context, token string) error
	// EndOthers ends every session of the user but keep's; keep "" ends all.
	EndOthers(ctx context.Context, userID, keep string) error
}

// Credentials finds whose an address is, and that user's password hash.
type Credentials interface {
	// Owner returns the id of the user holding the address (any letter
	// case), or domain.ErrUserNotFound.
	Owner(ctx context.Context, email string) (string, error)
	// Credential returns the id and password hash of the user holding the
	// address, in one query, or domain.ErrUserNotFound.
	Credential(ctx context.Context, email string) (string, []byte, error)
}

// SignIn asks for a session with an address and a password, from a client
// address (the limits' key; "" when unknown).
type SignIn struct {
	Email    string
	Password string
	Client   string
}

// SignInHandler handles SignIn.
type SignInHandler struct {
	credentials Credentials
	sessions    Sessions
	passwords   passwordCheck
	// dummyHash is compared when the address is unknown, so that an
	// unknown address takes the time of a wrong password.
	dummyHash []byte
}

// NewSignInHandler returns the handler. It hashes a password of its own
// once, at the configured cost: the hash an unknown address is compared
// with.
func NewSignInHandler(ctx context.Context, credentials Credentials, sessions Sessions, hasher PasswordHasher,
	guesses PasswordGuesses) (*SignInHandler, error) {
	dummy, err := hasher.Hash(ctx, "no account has this password")
	if err != nil {
		return nil, fmt.Errorf("hash the dummy password: %w", err)
	}
	return &SignInHandler{credentials: credentials, sessions: sessions, dummyHash: dummy,
		passwords: passwordCheck{hasher: hasher, guesses: guesses}}, nil
}

// Handle opens a session for the address's owner if the password is
// theirs. A wrong address and a wrong password get the same error after
// the same work: a guess counted, then one bcrypt comparison.
func (h *SignInHandler) Handle(ctx context.Context, cmd SignIn) (Session, error) {
	email := domain.EmailKey(cmd.Email)
	userID, hash, err := h.credentials.Credential(ctx, email)
	switch {
	case errors.Is(err, domain.ErrUserNotFound):
		// The account of the limits is then the address itself.
		userID, hash = "", h.dummyHash
	case err != nil:
		return Session{}, err
	}
	account := userID
	if account == "" {
		account = "email:" + email
	}
	err = h.passwords.check(ctx, account, cmd.Client, hash, cmd.Password)
	if errors.Is(err, domain.ErrWrongPassword) || (err == nil && userID == "") {
		return Session{}, domain.ErrInvalidCredentials
	}
	if err != nil {
		return Session{}, err
	}
	return h.sessions.Start(ctx, userID, hash)
}

// SignOutHandler ends a session.
type SignOutHandler struct{ sessions Sessions }

// NewSignOutHandler returns the handler.
func NewSignOutHandler(sessions Sessions) *SignOutHandler { return &SignOutHandler{sessions: sessions} }

// Handle ends the session of token.
func (h *SignOutHandler) Handle(ctx context.Context, token string) error {
	return h.sessions.End(ctx, token)
}
