package testfake

import (
	"context"
	"slices"
	"sync"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

// Users is the users' store in memory, honouring the contracts of the
// command package's interfaces it implements (RegistrationStore,
// UserRepository, EmailChanger, Credentials): each user's stream of events,
// appended at the version it was loaded at or refused with
// domain.ErrVersionMismatch; each address reserved by its key (any letter
// case) for one user, atomically; each user's password hash. Its Sessions
// are the users' sessions, which an email change ends in the same step.
type Users struct {
	// Fail, when set, fails every write.
	Fail error

	mu            sync.Mutex
	streams       map[string][]domain.Event
	hashes        map[string][]byte
	owners        map[string]string // email key -> user id
	sessions      map[string]string // token -> user id
	registrations int
}

var (
	_ command.RegistrationStore = (*Users)(nil)
	_ command.UserRepository    = (*Users)(nil)
	_ command.EmailChanger      = (*Users)(nil)
	_ command.Credentials       = (*Users)(nil)
)

// NewUsers returns a store that holds no user.
func NewUsers() *Users {
	return &Users{streams: map[string][]domain.Event{}, hashes: map[string][]byte{}, owners: map[string]string{},
		sessions: map[string]string{}}
}

// Register reserves the user's address and stores its hash, its pending
// events and session, when given: command.ErrAlreadyRegistered when the
// same user (id and address) is registered again, domain.ErrEmailTaken
// when another user holds the address, domain.ErrUserExists when the id
// is another user's.
func (u *Users) Register(_ context.Context, user *domain.User, passwordHash []byte, session *command.Session) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.registrations++
	if u.Fail != nil {
		return u.Fail
	}
	key := user.Email().Key()
	if owner, taken := u.owners[key]; taken {
		if owner == user.ID() {
			return command.ErrAlreadyRegistered
		}
		return domain.ErrEmailTaken
	}
	if _, exists := u.streams[user.ID()]; exists {
		return domain.ErrUserExists
	}
	u.owners[key] = user.ID()
	u.hashes[user.ID()] = slices.Clone(passwordHash)
	u.streams[user.ID()] = user.PendingEvents()
	if session != nil {
		u.sessions[session.Token] = user.ID()
	}
	return nil
}

// RegisteredUser returns the user and its password hash, or
// domain.ErrUserNotFound.
func (u *Users) RegisteredUser(_ context.Context, id string) (*domain.User, []byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	user, err := domain.UnmarshalUserFromEvents(slices.Clone(u.streams[id]))
	if err != nil {
		return nil, nil, err
	}
	return user, slices.Clone(u.hashes[id]), nil
}

// LoadUser rebuilds the user from its stream, or returns
// domain.ErrUserNotFound.
func (u *Users) LoadUser(ctx context.Context, id string) (*domain.User, error) {
	user, _, err := u.RegisteredUser(ctx, id)
	return user, err
}

// Save appends the user's pending events after the version it was loaded
// at: domain.ErrVersionMismatch if its stream changed since.
func (u *Users) Save(_ context.Context, user *domain.User) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.appendPending(user)
}

// ChangeEmail saves the user, whose pending EmailChanged leaves the address
// of key oldKey, in one step: the new address reserved (domain.ErrEmailTaken
// if another user holds it), the old one released, and every session of
// the user but keepSession's ended.
func (u *Users) ChangeEmail(_ context.Context, user *domain.User, oldKey, keepSession string) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	newKey := user.Email().Key()
	if owner, taken := u.owners[newKey]; taken && owner != user.ID() {
		return domain.ErrEmailTaken
	}
	if err := u.appendPending(user); err != nil {
		return err
	}
	if u.owners[oldKey] == user.ID() {
		delete(u.owners, oldKey)
	}
	u.owners[newKey] = user.ID()
	u.endSessions(user.ID(), keepSession)
	return nil
}

func (u *Users) appendPending(user *domain.User) error {
	if u.Fail != nil {
		return u.Fail
	}
	stream, ok := u.streams[user.ID()]
	if !ok {
		return domain.ErrUserNotFound
	}
	pending := user.PendingEvents()
	if len(stream) != user.Version()-len(pending) {
		return domain.ErrVersionMismatch
	}
	u.streams[user.ID()] = append(stream, pending...)
	return nil
}

// Owner returns the id of the user holding the address, in any letter
// case, or domain.ErrUserNotFound.
func (u *Users) Owner(ctx context.Context, email string) (string, error) {
	id, _, err := u.Credential(ctx, email)
	return id, err
}

// Credential returns the id and password hash of the user holding the
// address, in any letter case, or domain.ErrUserNotFound.
func (u *Users) Credential(_ context.Context, email string) (string, []byte, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	id, ok := u.owners[domain.EmailKey(email)]
	if !ok {
		return "", nil, domain.ErrUserNotFound
	}
	return id, slices.Clone(u.hashes[id]), nil
}

// Count is how many users are registered.
func (u *Users) Count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.streams)
}

// Registrations is how many times Register was called, failed calls
// included.
func (u *Users) Registrations() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.registrations
}

// Stored is what the store holds of a user: the user rebuilt from its
// stream, its password hash and its events; a nil user if it holds none.
func (u *Users) Stored(id string) (*domain.User, []byte, []domain.Event) {
	u.mu.Lock()
	defer u.mu.Unlock()
	stream := slices.Clone(u.streams[id])
	user, err := domain.UnmarshalUserFromEvents(stream)
	if err != nil {
		return nil, nil, nil
	}
	return user, slices.Clone(u.hashes[id]), stream
}
