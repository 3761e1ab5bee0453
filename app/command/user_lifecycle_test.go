package command_test

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/app/command"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testfake"
)

var testKey = domain.VerificationKey(strings.Repeat("k", domain.MinVerificationKeyBytes))

// testTTL is VERIFY_TTL in these tests.
const testTTL = 48 * time.Hour

// tokenFor is the token of the user's address of this number, expiring at
// expires.
func tokenFor(id, email string, number int, expires time.Time) string {
	return testKey.Token(domain.TokenSubject{UserID: id, EmailKey: domain.EmailKey(email), EmailNumber: number}, expires)
}

// lifecycle is the users' commands on the fakes of the stores, the
// hasher and the guess limits, at the time of a settable clock.
type lifecycle struct {
	users    *testfake.Users
	sessions command.Sessions
	hasher   *testfake.Hasher
	guesses  *testfake.Guesses
	clock    *testfake.Clock
	register *command.RegisterUserHandler
	verify   *command.VerifyEmailHandler
	resend   *command.RequestVerificationEmailHandler
	change   *command.ChangeEmailHandler
	signIn   *command.SignInHandler
}

func newLifecycle(t *testing.T) *lifecycle {
	t.Helper()
	users, hasher, c := testfake.NewUsers(), &testfake.Hasher{}, testfake.NewClock()
	guesses := &testfake.Guesses{Now: c.Now}
	signIn, err := command.NewSignInHandler(context.Background(), users, users.Sessions(), hasher, guesses)
	require.NoError(t, err)
	return &lifecycle{
		users:    users,
		sessions: users.Sessions(),
		hasher:   hasher,
		guesses:  guesses,
		clock:    c,
		register: command.NewRegisterUserHandler(users, hasher, nil, nil, c.Now),
		verify:   command.NewVerifyEmailHandler(users, testKey, testTTL, c.Now),
		resend:   command.NewRequestVerificationEmailHandler(users, nil, c.Now),
		change:   command.NewChangeEmailHandler(command.ChangeEmailDeps{Users: users, Hasher: hasher, Guesses: guesses, Now: c.Now}),
		signIn:   signIn,
	}
}

const lifecyclePassword = "correct horse battery staple"

func (l *lifecycle) newUser(t *testing.T, email string) *domain.User {
	t.Helper()
	user, err := l.register.Register(context.Background(), &command.RegisterUser{
		UserID: uuid.NewString(), Name: "Ada Lovelace", Email: email, Password: lifecyclePassword,
	})
	require.NoError(t, err)
	return user
}

func (l *lifecycle) events(t *testing.T, id string) int {
	t.Helper()
	user, err := l.users.LoadUser(context.Background(), id)
	require.NoError(t, err)
	return user.Version()
}

func TestVerifyEmail(t *testing.T) {
	l := newLifecycle(t)
	user := l.newUser(t, "Ada@Example.com")
	token := tokenFor(user.ID(), "ada@example.com", 1, l.clock.Now().Add(testTTL))
	ctx := context.Background()

	_, err := l.verify.Handle(ctx, command.VerifyEmail{UserID: user.ID(), Token: "wrong"})
	assert.ErrorIs(t, err, domain.ErrInvalidToken)
	_, err = l.verify.Handle(ctx, command.VerifyEmail{UserID: uuid.NewString(), Token: token})
	assert.ErrorIs(t, err, domain.ErrUserNotFound)

	verified, err := l.verify.Handle(ctx, command.VerifyEmail{UserID: user.ID(), Token: token})
	require.NoError(t, err)
	assert.True(t, verified.EmailVerified())
	again, err := l.verify.Handle(ctx, command.VerifyEmail{UserID: user.ID(), Token: token})
	require.NoError(t, err)
	assert.Equal(t, 2, again.Version(), "the same link again appends nothing")
	assert.Equal(t, 2, l.events(t, user.ID()))

	other := l.newUser(t, "bob@example.com")
	expired := tokenFor(other.ID(), "bob@example.com", 1, l.clock.Now().Add(time.Hour))
	farFuture := tokenFor(other.ID(), "bob@example.com", 1, l.clock.Now().AddDate(10, 0, 0))
	l.clock.Advance(time.Hour)
	_, err = l.verify.Handle(ctx, command.VerifyEmail{UserID: other.ID(), Token: expired})
	assert.ErrorIs(t, err, domain.ErrTokenExpired)
	_, err = l.verify.Handle(ctx, command.VerifyEmail{UserID: other.ID(), Token: farFuture})
	assert.ErrorIs(t, err, domain.ErrInvalidToken, "signed with the key, but expiring beyond VERIFY_TTL")
	assert.Equal(t, 1, l.events(t, other.ID()))
}

// After A -> B -> A, the welcome link of A does not verify A again: the
// address's number changed; a link of A's return does.
func TestVerifyEmail_AnAddressChangedBackVoidsItsOldLinks(t *testing.T) {
	l := newLifecycle(t)
	user := l.newUser(t, "ada@example.com")
	ctx := context.Background()
	welcome := tokenFor(user.ID(), "ada@example.com", 1, l.clock.Now().Add(testTTL))
	for version, email := range []string{"bob@example.org", "Ada@Example.com"} {
		l.clock.Advance(time.Minute)
		changed, err := l.change.Handle(ctx, command.ChangeEmail{UserID: user.ID(), Email: email,
			Password: lifecyclePassword, ExpectedVersion: version + 1})
		require.NoError(t, err)
		assert.Equal(t, version+2, changed.EmailNumber())
	}

	_, err := l.verify.Handle(ctx, command.VerifyEmail{UserID: user.ID(), Token: welcome})
	assert.ErrorIs(t, err, domain.ErrInvalidToken, "the welcome link of A's first spell")
	_, err = l.verify.Handle(ctx, command.VerifyEmail{UserID: user.ID(),
		Token: tokenFor(user.ID(), "bob@example.org", 2, l.clock.Now().Add(time.Hour))})
	assert.ErrorIs(t, err, domain.ErrInvalidToken, "B's link")
	assert.Equal(t, 3, l.events(t, user.ID()), "nothing verified")

	verified, err := l.verify.Handle(ctx, command.VerifyEmail{UserID: user.ID(),
		Token: tokenFor(user.ID(), "ada@example.com", 3, l.clock.Now().Add(testTTL))})
	require.NoError(t, err)
	assert.True(t, verified.EmailVerified())
}

func TestRequestVerificationEmail(t *testing.T) {
	l := newLifecycle(t)
	user := l.newUser(t, "ada@example.com")
	_, err := l.resend.Handle(context.Background(), command.RequestVerificationEmail{UserID: user.ID()})
	var de *domain.Error
	require.ErrorAs(t, err, &de)
	assert.Equal(t, domain.KindTooMany, de.Kind, "the welcome email's link is a minute old at most")

	l.clock.Advance(time.Minute)
	requested, err := l.resend.Handle(context.Background(), command.RequestVerificationEmail{UserID: user.ID()})
	require.NoError(t, err)
	assert.Equal(t, 2, requested.Version())
	_, err = l.resend.Handle(context.Background(), command.RequestVerificationEmail{UserID: user.ID()})
	require.ErrorAs(t, err, &de)
	assert.Equal(t, time.Minute, de.RetryAfter)
}

func TestChangeEmail(t *testing.T) {
	l := newLifecycle(t)
	user := l.newUser(t, "ada@example.com")
	l.newUser(t, "bob@example.com")
	ctx := context.Background()
	change := func(email, password string, version int) error {
		_, err := l.change.Handle(ctx, command.ChangeEmail{UserID: user.ID(), Email: email, Password: password,
			ExpectedVersion: version})
		return err
	}

	assert.ErrorIs(t, change("new@example.com", "wrong password", 2), domain.ErrVersionMismatch,
		"a stale version is refused before the password is checked")
	assert.ErrorContains(t, change("not an address", lifecyclePassword, 1), "email: invalid-format")
	assert.ErrorIs(t, change("bob@example.com", lifecyclePassword, 1), domain.ErrEmailTaken)
	_, err := l.change.Handle(ctx, command.ChangeEmail{UserID: uuid.NewString(), Email: "x@example.com",
		Password: lifecyclePassword, ExpectedVersion: 1})
	assert.ErrorIs(t, err, domain.ErrUserNotFound)

	for range testfake.DefaultGuessPair {
		assert.ErrorIs(t, change("new@example.com", "wrong password", 1), domain.ErrWrongPassword)
	}
	var de *domain.Error
	require.ErrorAs(t, change("new@example.com", lifecyclePassword, 1), &de, "even the right password, for a while")
	assert.Equal(t, domain.KindTooMany, de.Kind)
	assert.Positive(t, de.RetryAfter)
	assert.Equal(t, 1, l.events(t, user.ID()), "nothing changed")

	// From another address, the owner changes it: the stranger's guesses
	// lock nobody out.
	kept, err := l.sessions.Start(ctx, user.ID(), nil)
	require.NoError(t, err)
	ended, err := l.sessions.Start(ctx, user.ID(), nil)
	require.NoError(t, err)
	changed, err := l.change.Handle(ctx, command.ChangeEmail{UserID: user.ID(), Email: "New@Example.com",
		Password: lifecyclePassword, ExpectedVersion: 1, Client: "198.51.100.7", Session: kept.Token})
	require.NoError(t, err)
	assert.Equal(t, "New@Example.com", changed.Email().String())
	assert.Equal(t, 2, changed.Version())
	_, err = l.sessions.User(ctx, ended.Token)
	assert.ErrorIs(t, err, domain.ErrUnauthenticated, "every other session ends with the change")
	_, err = l.sessions.User(ctx, kept.Token)
	assert.NoError(t, err, "the session that asked stays")

	again, err := l.change.Handle(ctx, command.ChangeEmail{UserID: user.ID(), Email: "third@example.com",
		Password: lifecyclePassword, ExpectedVersion: command.AnyVersion, Client: "198.51.100.7"})
	require.NoError(t, err, "If-Match: * matches any version")
	assert.Equal(t, 3, again.Version())
}

func TestChangeEmail_RacingWrongPasswordsCheckOnlyTheLimit(t *testing.T) {
	l := newLifecycle(t)
	user := l.newUser(t, "ada@example.com")
	change := l.change
	var wg sync.WaitGroup
	for i := range 150 {
		wg.Go(func() {
			password := "wrong password " + strconv.Itoa(i)
			if i == 149 {
				password = lifecyclePassword // the right one, last among many
			}
			_, _ = change.Handle(context.Background(), command.ChangeEmail{UserID: user.ID(), Email: "eve@example.com",
				Password: password, ExpectedVersion: 1, Client: "192.0.2.66"})
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, l.hasher.Mismatches(), testfake.DefaultGuessPair, "wrong passwords compared")
}

func TestSignIn(t *testing.T) {
	l := newLifecycle(t)
	user := l.newUser(t, "Ada@Example.com")
	ctx := context.Background()
	session, err := l.signIn.Handle(ctx, command.SignIn{Email: "ADA@example.com", Password: lifecyclePassword, Client: "198.51.100.1"})
	require.NoError(t, err)
	assert.Equal(t, user.ID(), session.UserID)
	owner, err := l.sessions.User(ctx, session.Token)
	require.NoError(t, err)
	assert.Equal(t, user.ID(), owner)

	_, wrongPassword := l.signIn.Handle(ctx, command.SignIn{Email: "ada@example.com", Password: "not it at all", Client: "198.51.100.1"})
	_, unknownEmail := l.signIn.Handle(ctx, command.SignIn{Email: "nobody@example.com", Password: "not it at all", Client: "198.51.100.1"})
	assert.ErrorIs(t, wrongPassword, domain.ErrInvalidCredentials)
	assert.Equal(t, wrongPassword, unknownEmail, "the same answer")

	for range testfake.DefaultGuessPair {
		_, err := l.signIn.Handle(ctx, command.SignIn{Email: "ada@example.com", Password: "a stranger's guess", Client: "192.0.2.66"})
		require.ErrorIs(t, err, domain.ErrInvalidCredentials)
	}
	_, err = l.signIn.Handle(ctx, command.SignIn{Email: "ada@example.com", Password: lifecyclePassword, Client: "192.0.2.66"})
	assert.True(t, domain.IsKind(err, domain.KindTooMany), "the guessing address waits: %v", err)
	_, err = l.signIn.Handle(ctx, command.SignIn{Email: "ada@example.com", Password: lifecyclePassword, Client: "198.51.100.2"})
	assert.NoError(t, err, "the owner signs in from another address")
}

// A repeated registration (same id and address) compares its password:
// a guess like any other, counted before it is made.
func TestRegisterUser_RepeatsAreCountedGuesses(t *testing.T) {
	l := newLifecycle(t)
	user := l.newUser(t, "ada@example.com")
	register := command.NewRegisterUserHandler(l.users, l.hasher, l.guesses, nil, l.clock.Now)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			_, _ = register.Register(context.Background(), &command.RegisterUser{UserID: user.ID(), Name: "Ada Lovelace",
				Email: "ada@example.com", Password: "guess number " + strconv.Itoa(i) + " of many", Client: "192.0.2.66"})
		})
	}
	wg.Wait()
	assert.LessOrEqual(t, l.hasher.Mismatches(), testfake.DefaultGuessPair, "wrong passwords compared")
}
