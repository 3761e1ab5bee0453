package command

import (
	"context"
	"fmt"

	"github.com/onboard/onboard/domain"
)

// PasswordGuesses limits the checks of passwords: per account, per client
// address, and per account and client together.
type PasswordGuesses interface {
	// Begin counts one check of the account's password from client before
	// it is made, atomically where checks race: a domain error of kind
	// KindTooMany, with its wait, when a limit is reached. Every check
	// counts as a failure until Succeeded takes it back.
	Begin(ctx context.Context, account, client string) error
	// Succeeded takes back the check of a right password; the checks
	// racing it stay counted.
	Succeeded(ctx context.Context, account, client string) error
}

// NoPasswordGuesses limits nothing: the tests of what is not a limit.
type NoPasswordGuesses struct{}

// Begin lets every check through.
func (NoPasswordGuesses) Begin(context.Context, string, string) error { return nil }

// Succeeded does nothing.
func (NoPasswordGuesses) Succeeded(context.Context, string, string) error { return nil }

// passwordCheck compares a password with its hash, each comparison counted
// by the guess limits before it is made.
type passwordCheck struct {
	hasher  PasswordHasher
	guesses PasswordGuesses
}

// check returns nil when password is the account's, domain.ErrWrongPassword
// when it is not, and the limits' error, before any hash, when they are
// reached.
func (p passwordCheck) check(ctx context.Context, account, client string, hash []byte, password string) error {
	if err := p.guesses.Begin(ctx, account, client); err != nil {
		return err
	}
	same, err := p.hasher.Matches(ctx, hash, password)
	if err != nil {
		return fmt.Errorf("check the password: %w", err)
	}
	if !same {
		return domain.ErrWrongPassword
	}
	return p.guesses.Succeeded(ctx, account, client)
}
