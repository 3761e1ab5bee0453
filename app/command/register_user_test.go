package command_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters/hasher"
	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
)

// memRegistry is an in-memory RegistrationStore: it reserves lower-cased email
// keys, stores the hash apart from the events, and reports a redelivered
// registration (same id, same email) with command.ErrAlreadyRegistered.
type memRegistry struct {
	mu       sync.Mutex
	fail     error             // returned by every Register when set
	owners   map[string]string // email key -> user id
	users    map[string]*domain.User
	hashes   map[string][]byte
	events   map[string][]domain.Event
	attempts int
}

func newMemRegistry() *memRegistry {
	return &memRegistry{
		owners: map[string]string{},
		users:  map[string]*domain.User{},
		hashes: map[string][]byte{},
		events: map[string][]domain.Event{},
	}
}

func (r *memRegistry) Register(_ context.Context, user *domain.User, passwordHash []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	if r.fail != nil {
		return r.fail
	}
	key := user.Email().Key()
	if owner, taken := r.owners[key]; taken {
		if owner == user.ID() {
			return command.ErrAlreadyRegistered
		}
		return domain.ErrEmailTaken
	}
	if _, exists := r.users[user.ID()]; exists {
		return domain.ErrUserExists
	}
	r.owners[key] = user.ID()
	r.users[user.ID()] = user
	r.hashes[user.ID()] = append([]byte(nil), passwordHash...)
	r.events[user.ID()] = append([]domain.Event(nil), user.PendingEvents()...)
	return nil
}

func (r *memRegistry) RegisteredUser(_ context.Context, id string) (*domain.User, []byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	user, ok := r.users[id]
	if !ok {
		return nil, nil, domain.ErrUserNotFound
	}
	return user, r.hashes[id], nil
}

func (r *memRegistry) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.users)
}

func (r *memRegistry) user(id string) (*domain.User, []byte, []domain.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.users[id], r.hashes[id], r.events[id]
}

var fixedNow = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*60*60))

// handlerCost is the bcrypt cost of newHandler's hasher: low, as hashing
// under the race detector is slow, but not bcrypt's floor, so that the hash
// shows the configured cost was used.
const handlerCost = bcrypt.MinCost + 1

func newHandler(t *testing.T, registry command.RegistrationStore) *command.RegisterUserHandler {
	t.Helper()
	return command.NewRegisterUserHandler(registry, newHasher(t, hasher.Config{Cost: handlerCost, Concurrency: 2, MaxWait: time.Minute}), nil, nil,
		func() time.Time { return fixedNow })
}

func newHasher(t *testing.T, cfg hasher.Config) *hasher.Bcrypt {
	t.Helper()
	h, err := hasher.New(cfg)
	require.NoError(t, err)
	return h
}

func validCommand() *command.RegisterUser {
	return &command.RegisterUser{
		UserID:   "0190f5c4-7b9e-7000-8000-000000000001",
		Name:     "  Ada Lovelace ",
		Email:    "Ada@Example.com",
		Password: "correct horse battery",
	}
}

// registerValidFirst registers validCommand before the case's command.
func registerValidFirst(t *testing.T, h *command.RegisterUserHandler, _ *memRegistry) {
	require.NoError(t, h.Handle(context.Background(), validCommand()))
}

// registerUserCase is a command, what happens before it, and what it must
// return and store.
type registerUserCase struct {
	name string
	// setup runs before the command, against the same handler and registry.
	setup     func(t *testing.T, h *command.RegisterUserHandler, r *memRegistry)
	cmd       func() *command.RegisterUser
	wantErr   func(t *testing.T, err error)
	wantUsers int
}

// errDBDown is the registry's outage in registerUserCases.
var errDBDown = errors.New("db down")

func registerUserCases() []registerUserCase {
	return []registerUserCase{
		{
			name:      "valid",
			cmd:       validCommand,
			wantUsers: 1,
		},
		{
			name: "invalid fields",
			cmd: func() *command.RegisterUser {
				return &command.RegisterUser{UserID: "u-2", Name: " ", Email: "Ada <ada@example.com>", Password: "1234567"}
			},
			wantErr: func(t *testing.T, err error) {
				var de *domain.Error
				require.ErrorAs(t, err, &de)
				assert.Equal(t, domain.KindInvalid, de.Kind)
				assert.Equal(t, "validation-failed", de.Code)
				assert.Equal(t, map[string]string{"id": "invalid-format", "name": "required", "email": "invalid-format", "password": "too-short"}, de.Fields)
			},
		},
		{
			name: "password over bcrypt's 72 bytes",
			cmd: func() *command.RegisterUser {
				cmd := validCommand()
				cmd.Password = strings.Repeat("p", 73)
				return cmd
			},
			wantErr: func(t *testing.T, err error) {
				assert.True(t, domain.IsKind(err, domain.KindInvalid))
			},
		},
		{
			name: "missing user id",
			cmd: func() *command.RegisterUser {
				cmd := validCommand()
				cmd.UserID = ""
				return cmd
			},
			wantErr: func(t *testing.T, err error) {
				assert.True(t, domain.IsKind(err, domain.KindInvalid))
			},
		},
		{
			name: "email taken by another user in another case",
			setup: func(t *testing.T, h *command.RegisterUserHandler, _ *memRegistry) {
				require.NoError(t, h.Handle(context.Background(), &command.RegisterUser{
					UserID: "0190f5c4-7b9e-7000-8000-000000000002", Name: "Eve", Email: "ada@example.COM", Password: "another password",
				}))
			},
			cmd: validCommand,
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, domain.ErrEmailTaken)
				assert.True(t, domain.IsKind(err, domain.KindConflict))
			},
			wantUsers: 1,
		},
		{
			name:      "same command twice",
			setup:     registerValidFirst,
			cmd:       validCommand,
			wantUsers: 1,
		},
		{
			name:  "same command twice, name spelled with other spaces",
			setup: registerValidFirst,
			cmd: func() *command.RegisterUser {
				cmd := validCommand()
				cmd.Name = "Ada Lovelace"
				return cmd
			},
			wantUsers: 1,
		},
		{
			name:  "same id and email with another name",
			setup: registerValidFirst,
			cmd: func() *command.RegisterUser {
				cmd := validCommand()
				cmd.Name = "Ada King"
				return cmd
			},
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, domain.ErrIdempotencyKeyReused)
				assert.True(t, domain.IsKind(err, domain.KindInvalid))
			},
			wantUsers: 1,
		},
		{
			name:  "same id and email with another password",
			setup: registerValidFirst,
			cmd: func() *command.RegisterUser {
				cmd := validCommand()
				cmd.Password = "another horse battery"
				return cmd
			},
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, domain.ErrIdempotencyKeyReused)
			},
			wantUsers: 1,
		},
		{
			name:  "same id with another email",
			setup: registerValidFirst,
			cmd: func() *command.RegisterUser {
				cmd := validCommand()
				cmd.Email = "someone.else@example.com"
				return cmd
			},
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, domain.ErrUserExists)
			},
			wantUsers: 1,
		},
		{
			name: "registry down",
			setup: func(_ *testing.T, _ *command.RegisterUserHandler, r *memRegistry) {
				r.fail = fmt.Errorf("begin: %w", errDBDown)
			},
			cmd: validCommand,
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, errDBDown)
				var de *domain.Error
				assert.False(t, errors.As(err, &de), "an infrastructure failure is no domain error")
			},
		},
		{
			name:  "registry down with a bare error",
			setup: func(_ *testing.T, _ *command.RegisterUserHandler, r *memRegistry) { r.fail = errDBDown },
			cmd:   validCommand,
			wantErr: func(t *testing.T, err error) {
				require.ErrorIs(t, err, errDBDown)
			},
		},
	}
}

func TestRegisterUserHandler_Handle(t *testing.T) {
	t.Parallel()
	tests := registerUserCases()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			registry := newMemRegistry()
			h := newHandler(t, registry)
			if tt.setup != nil {
				tt.setup(t, h, registry)
			}

			cmd := tt.cmd()
			err := h.Handle(context.Background(), cmd)

			if tt.wantErr == nil {
				require.NoError(t, err)
				assertRegistered(t, registry, cmd)
			} else {
				require.Error(t, err)
				tt.wantErr(t, err)
				assert.NotContains(t, err.Error(), cmd.Password, "an error never echoes the password")
			}
			assert.Equal(t, tt.wantUsers, registry.count(), "users stored")
		})
	}
}

// assertRegistered checks what the registry holds for cmd: the user, a bcrypt
// hash of the password, and one UserRegistered that carries no secret.
func assertRegistered(t *testing.T, registry *memRegistry, cmd *command.RegisterUser) {
	t.Helper()
	user, hash, events := registry.user(cmd.UserID)
	require.NotNil(t, user, "user %s stored", cmd.UserID)
	assert.Equal(t, cmd.UserID, user.ID())
	assert.Equal(t, strings.TrimSpace(cmd.Name), user.Name())
	assert.Equal(t, cmd.Email, user.Email().String())
	assert.Equal(t, fixedNow.UTC().Truncate(time.Microsecond), user.RegisteredAt())

	require.NotEmpty(t, hash)
	assert.NotEqual(t, cmd.Password, string(hash), "the password is never stored as is")
	assert.NoError(t, bcrypt.CompareHashAndPassword(hash, []byte(cmd.Password)), "the hash matches the password")
	assert.Error(t, bcrypt.CompareHashAndPassword(hash, []byte(cmd.Password+"x")), "the hash does not match another password")
	cost, err := bcrypt.Cost(hash)
	require.NoError(t, err)
	assert.Equal(t, handlerCost, cost, "hashed at the hasher's cost")

	require.Len(t, events, 1)
	assert.Equal(t, domain.UserRegistered{
		UserID:       cmd.UserID,
		Name:         strings.TrimSpace(cmd.Name),
		Email:        cmd.Email,
		Locale:       "en",
		RegisteredAt: fixedNow.UTC().Truncate(time.Microsecond),
	}, events[0])
	payload, err := json.Marshal(events)
	require.NoError(t, err)
	assert.NotContains(t, string(payload), cmd.Password, "the event carries no password")
	assert.NotContains(t, string(payload), "$2a$", "the event carries no bcrypt hash")
	assert.NotContains(t, string(payload), string(hash), "the event carries no bcrypt hash")
}

func TestRegisterUserHandler_SameCommandTwice(t *testing.T) {
	t.Parallel()
	registry := newMemRegistry()
	h := newHandler(t, registry)

	require.NoError(t, h.Handle(context.Background(), validCommand()))
	_, firstHash, _ := registry.user(validCommand().UserID)
	require.NoError(t, h.Handle(context.Background(), validCommand()), "a redelivered command is a no-op")

	assert.Equal(t, 2, registry.attempts, "the second command reached the registry")
	assert.Equal(t, 1, registry.count())
	_, hash, events := registry.user(validCommand().UserID)
	assert.Equal(t, firstHash, hash, "the first credential is kept")
	assert.Len(t, events, 1, "one UserRegistered")
}

func TestRegisterUserHandler_ConcurrentSameEmail(t *testing.T) {
	t.Parallel()
	registry := newMemRegistry()
	h := newHandler(t, registry)

	const n = 4
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			errs[i] = h.Handle(context.Background(), &command.RegisterUser{
				UserID:   fmt.Sprintf("0190f5c4-7b9e-7000-8000-%012d", i+100),
				Name:     "Ada",
				Email:    []string{"ada@example.com", "ADA@example.com"}[i%2],
				Password: "correct horse battery",
			})
		})
	}
	wg.Wait()

	succeeded := 0
	for _, err := range errs {
		if err == nil {
			succeeded++
			continue
		}
		assert.ErrorIs(t, err, domain.ErrEmailTaken)
	}
	assert.Equal(t, 1, succeeded)
	assert.Equal(t, 1, registry.count())
}

// failingHasher fails as bcrypt does on a cost it does not support.
type failingHasher struct{}

func (failingHasher) Hash(context.Context, string) ([]byte, error) {
	return nil, bcrypt.InvalidCostError(bcrypt.MaxCost + 1)
}

func (failingHasher) Matches(context.Context, []byte, string) (bool, error) {
	return false, bcrypt.InvalidCostError(bcrypt.MaxCost + 1)
}

func TestRegisterUserHandler_HashFailure(t *testing.T) {
	t.Parallel()
	registry := newMemRegistry()
	h := command.NewRegisterUserHandler(registry, failingHasher{}, nil, nil, nil)

	err := h.Handle(context.Background(), validCommand())

	var costErr bcrypt.InvalidCostError
	require.ErrorAs(t, err, &costErr, "the hasher's error is wrapped")
	assert.False(t, domain.IsKind(err, domain.KindInvalid))
	assert.Zero(t, registry.attempts, "nothing reaches the registry")
}

func TestRegisterUserHandler_DefaultClockIsNow(t *testing.T) {
	t.Parallel()
	registry := newMemRegistry()
	h := command.NewRegisterUserHandler(registry, newHasher(t, hasher.Config{Cost: bcrypt.MinCost, Concurrency: 1, MaxWait: time.Minute}), nil, nil, nil)

	before := time.Now()
	require.NoError(t, h.Handle(context.Background(), validCommand()))
	after := time.Now()

	user, _, _ := registry.user(validCommand().UserID)
	require.NotNil(t, user)
	at := user.RegisteredAt()
	assert.Equal(t, time.UTC, at.Location())
	assert.False(t, at.Before(before.Truncate(time.Microsecond)), "registered at %v, before %v", at, before)
	assert.False(t, at.After(after), "registered at %v, after %v", at, after)
}
