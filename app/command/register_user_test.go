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

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
)

var fixedNow = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*60*60))

// newHandler is the handler on the store, with a hasher of its own.
func newHandler(users *testfake.Users) (*command.RegisterUserHandler, *testfake.Hasher) {
	hasher := &testfake.Hasher{}
	return command.NewRegisterUserHandler(users, hasher, nil, nil, func() time.Time { return fixedNow }), hasher
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
func registerValidFirst(t *testing.T, h *command.RegisterUserHandler, _ *testfake.Users) {
	require.NoError(t, h.Handle(context.Background(), validCommand()))
}

// registerUserCase is a command, what happens before it, and what it must
// return and store.
type registerUserCase struct {
	name string
	// setup runs before the command, against the same handler and store.
	setup     func(t *testing.T, h *command.RegisterUserHandler, users *testfake.Users)
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
			setup: func(t *testing.T, h *command.RegisterUserHandler, _ *testfake.Users) {
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
			setup: func(_ *testing.T, _ *command.RegisterUserHandler, users *testfake.Users) {
				users.Fail = fmt.Errorf("begin: %w", errDBDown)
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
			setup: func(_ *testing.T, _ *command.RegisterUserHandler, users *testfake.Users) { users.Fail = errDBDown },
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
			users := testfake.NewUsers()
			h, hasher := newHandler(users)
			if tt.setup != nil {
				tt.setup(t, h, users)
			}

			cmd := tt.cmd()
			err := h.Handle(context.Background(), cmd)

			if tt.wantErr == nil {
				require.NoError(t, err)
				assertRegistered(t, users, hasher, cmd)
			} else {
				require.Error(t, err)
				tt.wantErr(t, err)
				assert.NotContains(t, err.Error(), cmd.Password, "an error never echoes the password")
			}
			assert.Equal(t, tt.wantUsers, users.Count(), "users stored")
		})
	}
}

// assertRegistered checks what the store holds for cmd: the user, the
// hasher's hash of the password, and one UserRegistered that carries no
// secret.
func assertRegistered(t *testing.T, users *testfake.Users, hasher *testfake.Hasher, cmd *command.RegisterUser) {
	t.Helper()
	user, hash, events := users.Stored(cmd.UserID)
	require.NotNil(t, user, "user %s stored", cmd.UserID)
	assert.Equal(t, cmd.UserID, user.ID())
	assert.Equal(t, strings.TrimSpace(cmd.Name), user.Name())
	assert.Equal(t, cmd.Email, user.Email().String())
	assert.Equal(t, fixedNow.UTC().Truncate(time.Microsecond), user.RegisteredAt())

	require.NotEmpty(t, hash)
	assert.NotContains(t, string(hash), cmd.Password, "the password is never stored as is")
	same, err := hasher.Matches(context.Background(), hash, cmd.Password)
	require.NoError(t, err, "a hash of the handler's hasher")
	assert.True(t, same, "the hash matches the password")
	same, err = hasher.Matches(context.Background(), hash, cmd.Password+"x")
	require.NoError(t, err)
	assert.False(t, same, "the hash does not match another password")

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
	assert.NotContains(t, string(payload), "fake$", "the event carries no hash")
	assert.NotContains(t, string(payload), string(hash), "the event carries no hash")
}

func TestRegisterUserHandler_SameCommandTwice(t *testing.T) {
	t.Parallel()
	users := testfake.NewUsers()
	h, _ := newHandler(users)

	require.NoError(t, h.Handle(context.Background(), validCommand()))
	_, firstHash, _ := users.Stored(validCommand().UserID)
	require.NoError(t, h.Handle(context.Background(), validCommand()), "a redelivered command is a no-op")

	assert.Equal(t, 2, users.Registrations(), "the second command reached the store")
	assert.Equal(t, 1, users.Count())
	_, hash, events := users.Stored(validCommand().UserID)
	assert.Equal(t, firstHash, hash, "the first credential is kept")
	assert.Len(t, events, 1, "one UserRegistered")
}

// openedSessions are sessions that tell the tokens they opened.
type openedSessions struct {
	command.Sessions
	tokens []string
}

func (s *openedSessions) Open(userID string) (command.Session, error) {
	session, err := s.Sessions.Open(userID)
	s.tokens = append(s.tokens, session.Token)
	return session, err
}

// A registration's session is stored with it; a repeat of the registration
// opens another; a registration refused stores none.
func TestRegisterUserHandler_RegisterSignedIn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	users := testfake.NewUsers()
	sessions := &openedSessions{Sessions: users.Sessions()}
	plain, _ := newHandler(users)
	h := plain.WithSessions(sessions)
	userOf := func(token string) string {
		id, err := users.Sessions().User(ctx, token)
		if err != nil {
			return ""
		}
		return id
	}

	user, first, err := h.RegisterSignedIn(ctx, validCommand())
	require.NoError(t, err)
	assert.Equal(t, validCommand().UserID, user.ID())
	assert.Equal(t, user.ID(), first.UserID)
	assert.Equal(t, user.ID(), userOf(first.Token))
	assert.True(t, first.ExpiresAt.After(first.StartedAt))

	again, repeat, err := h.RegisterSignedIn(ctx, validCommand())
	require.NoError(t, err)
	assert.Equal(t, user.ID(), again.ID())
	assert.NotEqual(t, first.Token, repeat.Token)
	assert.Equal(t, user.ID(), userOf(repeat.Token))

	other := validCommand()
	other.UserID = "0190f5c4-7b9e-7000-8000-000000000002"
	_, _, err = h.RegisterSignedIn(ctx, other)
	require.ErrorIs(t, err, domain.ErrEmailTaken)
	require.Len(t, sessions.tokens, 3, "each registration opened one session")
	assert.Empty(t, userOf(sessions.tokens[2]), "the refused registration stored its session")

	_, _, err = plain.RegisterSignedIn(ctx, other)
	require.Error(t, err, "without sessions")
	assert.Equal(t, 1, users.Count())
}

func TestRegisterUserHandler_ConcurrentSameEmail(t *testing.T) {
	t.Parallel()
	users := testfake.NewUsers()
	h, _ := newHandler(users)

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
	assert.Equal(t, 1, users.Count())
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
	users := testfake.NewUsers()
	h := command.NewRegisterUserHandler(users, failingHasher{}, nil, nil, nil)

	err := h.Handle(context.Background(), validCommand())

	var costErr bcrypt.InvalidCostError
	require.ErrorAs(t, err, &costErr, "the hasher's error is wrapped")
	assert.False(t, domain.IsKind(err, domain.KindInvalid))
	assert.Zero(t, users.Registrations(), "nothing reaches the store")
}

func TestRegisterUserHandler_DefaultClockIsNow(t *testing.T) {
	t.Parallel()
	users := testfake.NewUsers()
	h := command.NewRegisterUserHandler(users, &testfake.Hasher{}, nil, nil, nil)

	before := time.Now()
	require.NoError(t, h.Handle(context.Background(), validCommand()))
	after := time.Now()

	user, _, _ := users.Stored(validCommand().UserID)
	require.NotNil(t, user)
	at := user.RegisteredAt()
	assert.Equal(t, time.UTC, at.Location())
	assert.False(t, at.Before(before.Truncate(time.Microsecond)), "registered at %v, before %v", at, before)
	assert.False(t, at.After(after), "registered at %v, after %v", at, after)
}
