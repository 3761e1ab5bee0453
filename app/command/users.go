package command

import (
	"context"
	"errors"

	"github.com/onboard/onboard/domain"
)

// UserRepository loads a user from its stream and saves its pending
// events, with the read model, at the version it was loaded at.
type UserRepository interface {
	// LoadUser returns the user, or domain.ErrUserNotFound.
	LoadUser(ctx context.Context, id string) (*domain.User, error)
	// Save fails with domain.ErrVersionMismatch if the stream changed
	// since the user was loaded.
	Save(ctx context.Context, user *domain.User) error
}

// saveAttempts bounds how often a command on one user's stream is redone
// after another write to it won.
const saveAttempts = 3

// onUser loads a user, lets decide record its events, and saves them;
// when another write to the stream won meanwhile, it does it all again
// on the newer stream. A decision that records nothing saves nothing.
func onUser(ctx context.Context, users UserRepository, id string, decide func(*domain.User) error) (*domain.User, error) {
	for attempt := 1; ; attempt++ {
		user, err := users.LoadUser(ctx, id)
		if err != nil {
			return nil, err
		}
		if err := decide(user); err != nil {
			return nil, err
		}
		if len(user.PendingEvents()) == 0 {
			return user, nil
		}
		err = users.Save(ctx, user)
		if errors.Is(err, domain.ErrVersionMismatch) && attempt < saveAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return user, nil
	}
}
