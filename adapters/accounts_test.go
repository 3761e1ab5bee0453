package adapters_test

import (
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/internal/testfake"
)

var limitsKey = []byte(strings.Repeat("g", 32))

func newGuesses(t *testing.T, db *testenv.DB, clock *testfake.Clock) *adapters.PasswordGuesses {
	t.Helper()
	guesses, err := adapters.NewPasswordGuesses(adapters.PasswordGuessesConfig{DB: db.DB, Key: limitsKey, Now: clock.Now})
	require.NoError(t, err)
	return guesses
}

// waitOf returns the wait of a too-many-requests error, failing otherwise.
func waitOf(t *testing.T, err error) time.Duration {
	t.Helper()
	var de *domain.Error
	require.ErrorAs(t, err, &de)
	require.Equal(t, domain.KindTooMany, de.Kind)
	return de.RetryAfter
}

func TestPasswordGuesses_RacingChecksPassOnlyTheLimit(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		guesses := newGuesses(t, db, testfake.NewClock())
		account := uuid.NewString()
		var passed, refused atomic.Int32
		var wg sync.WaitGroup
		for range 150 {
			wg.Go(func() {
				err := guesses.Begin(testenv.Context(t), account, "192.0.2.1")
				switch {
				case err == nil:
					passed.Add(1)
				case domain.IsKind(err, domain.KindTooMany):
					refused.Add(1)
				default:
					t.Errorf("begin: %v", err)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, int32(adapters.DefaultGuessPair.Free), passed.Load(), "checks let through")
		assert.Equal(t, int32(150-adapters.DefaultGuessPair.Free), refused.Load())
	})
}

func TestPasswordGuesses_WaitsGrowAndStrangersCannotLockTheOwnerOut(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		clock := testfake.NewClock()
		guesses := newGuesses(t, db, clock)
		ctx := testenv.Context(t)
		account, attacker, owner := uuid.NewString(), "192.0.2.1", "198.51.100.7"
		for range adapters.DefaultGuessPair.Free {
			require.NoError(t, guesses.Begin(ctx, account, attacker))
		}
		assert.Equal(t, adapters.DefaultGuessFirstDelay, waitOf(t, guesses.Begin(ctx, account, attacker)))
		require.NoError(t, guesses.Begin(ctx, account, owner), "the owner at another address still checks")
		require.NoError(t, guesses.Succeeded(ctx, account, owner))

		clock.Advance(adapters.DefaultGuessFirstDelay)
		require.NoError(t, guesses.Begin(ctx, account, attacker), "one more after the wait")
		assert.Equal(t, 2*adapters.DefaultGuessFirstDelay, waitOf(t, guesses.Begin(ctx, account, attacker)),
			"then twice as long")
		clock.Advance(adapters.DefaultGuessMaxDelay * 4)
		for range 10 {
			require.NoError(t, guesses.Begin(ctx, account, attacker))
			clock.Advance(adapters.DefaultGuessMaxDelay)
		}
		assert.Equal(t, adapters.DefaultGuessMaxDelay, waitOf(t, func() error {
			require.NoError(t, guesses.Begin(ctx, account, attacker))
			return guesses.Begin(ctx, account, attacker)
		}()), "at most the longest wait")

		clock.Advance(adapters.DefaultGuessForgetAfter)
		for range adapters.DefaultGuessPair.Free {
			require.NoError(t, guesses.Begin(ctx, account, attacker), "failures a day old are forgotten")
		}
	})
}

func TestPasswordGuesses_ClientAndAccountLimits(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		guesses, err := adapters.NewPasswordGuesses(adapters.PasswordGuessesConfig{DB: db.DB, Key: limitsKey,
			Pair: adapters.GuessLimit{Free: 2}, Client: adapters.GuessLimit{Free: 3}, Account: adapters.GuessLimit{Free: 4}})
		require.NoError(t, err)
		ctx := testenv.Context(t)

		sprayer := "192.0.2.9"
		for range 3 {
			require.NoError(t, guesses.Begin(ctx, uuid.NewString(), sprayer))
		}
		waitOf(t, guesses.Begin(ctx, uuid.NewString(), sprayer)) // a fourth account from one client

		account := uuid.NewString()
		for i := range 4 {
			require.NoError(t, guesses.Begin(ctx, account, "203.0.113."+string(rune('1'+i))))
		}
		waitOf(t, guesses.Begin(ctx, account, "203.0.113.99")) // a fifth client on one account
		require.NoError(t, guesses.Succeeded(ctx, account, "203.0.113.1"))
		require.NoError(t, guesses.Begin(ctx, account, "203.0.113.99"), "a right password takes its own check back")

		stored := strings.Join(db.RowsAsText(t, `SELECT subject FROM password_guesses`), " ")
		assert.NotContains(t, stored, account, "subjects are keyed hashes")
		assert.NotContains(t, stored, "203.0.113")
	})
}

func newSessions(t *testing.T, db *testenv.DB, clock *testfake.Clock) *adapters.SessionStore {
	t.Helper()
	sessions, err := adapters.NewSessionStore(adapters.SessionStoreConfig{DB: db.DB, TTL: 3 * time.Hour,
		IdleTimeout: time.Hour, Now: clock.Now})
	require.NoError(t, err)
	return sessions
}

func TestSessionStore(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		clock := testfake.NewClock()
		sessions := newSessions(t, db, clock)
		ctx := testenv.Context(t)
		user := uuid.NewString()

		session, err := sessions.Start(ctx, user, nil)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(session.Token), 43, "256 bits")
		assert.WithinDuration(t, clock.Now().Add(3*time.Hour), session.ExpiresAt, time.Second)
		got, err := sessions.User(ctx, session.Token)
		require.NoError(t, err)
		assert.Equal(t, user, got)
		assert.NotContains(t, strings.Join(db.RowsAsText(t, `SELECT token_hash FROM sessions`), " "), session.Token,
			"only a hash is stored")

		for _, token := range []string{"", "unknown", strings.Repeat("x", 4096)} {
			_, err := sessions.User(ctx, token)
			assert.ErrorIs(t, err, domain.ErrUnauthenticated)
		}

		// Used every 50 minutes, the session lives until its lifetime ends.
		for range 3 {
			clock.Advance(50 * time.Minute)
			_, err = sessions.User(ctx, session.Token)
			require.NoError(t, err, "the idle timeout slides")
		}
		clock.Advance(31 * time.Minute)
		_, err = sessions.User(ctx, session.Token)
		assert.ErrorIs(t, err, domain.ErrUnauthenticated, "past its lifetime")

		idle, err := sessions.Start(ctx, user, nil)
		require.NoError(t, err)
		clock.Advance(time.Hour)
		_, err = sessions.User(ctx, idle.Token)
		assert.ErrorIs(t, err, domain.ErrUnauthenticated, "idle for an hour")
	})
}

// A sign-in drops the user's sessions that ended unused, so that its rows
// stay as few as its live sessions.
func TestSessionStore_ASignInDropsEndedSessions(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		clock := testfake.NewClock()
		sessions := newSessions(t, db, clock)
		ctx := testenv.Context(t)
		id := testenv.RegisterUser(t, store, "ada@example.com")
		_, hash, err := store.Credential(ctx, "ada@example.com")
		require.NoError(t, err)

		_, err = sessions.Start(ctx, id, nil) // the registration's, left unused
		require.NoError(t, err)
		clock.Advance(time.Hour)
		_, err = sessions.Start(ctx, id, hash)
		require.NoError(t, err)
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM sessions WHERE user_id = ?`, id),
			"the sign-in's session alone")
	})
}

func TestSessionStore_EndOthers(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		sessions := newSessions(t, db, testfake.NewClock())
		ctx := testenv.Context(t)
		user, other := uuid.NewString(), uuid.NewString()
		start := func(id string) string {
			s, err := sessions.Start(ctx, id, nil)
			require.NoError(t, err)
			return s.Token
		}
		kept, ended, others := start(user), start(user), start(other)
		require.NoError(t, sessions.EndOthers(ctx, user, kept))
		_, err := sessions.User(ctx, ended)
		assert.ErrorIs(t, err, domain.ErrUnauthenticated)
		for _, token := range []string{kept, others} {
			_, err := sessions.User(ctx, token)
			assert.NoError(t, err)
		}
		require.NoError(t, sessions.End(ctx, kept))
		_, err = sessions.User(ctx, kept)
		assert.ErrorIs(t, err, domain.ErrUnauthenticated)
		require.NoError(t, sessions.EndOthers(ctx, other, ""))
		_, err = sessions.User(ctx, others)
		assert.ErrorIs(t, err, domain.ErrUnauthenticated)
	})
}

func newEmailBudget(t *testing.T, db *testenv.DB, clock *testfake.Clock) *adapters.EmailBudget {
	t.Helper()
	budget, err := adapters.NewEmailBudget(adapters.EmailBudgetConfig{DB: db.DB, Key: limitsKey, Now: clock.Now,
		Recipient: adapters.DefaultEmailRecipient, Account: adapters.DefaultEmailAccount, Client: adapters.DefaultEmailClient})
	require.NoError(t, err)
	return budget
}

func TestEmailBudget_RacingSpendsPassOnlyTheAllowance(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		budget := newEmailBudget(t, db, testfake.NewClock())
		var passed atomic.Int32
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				// Fifty accounts from fifty addresses, all to one victim.
				err := budget.Spend(testenv.Context(t), uuid.NewString(), "192.0.2."+strconv.Itoa(i), "Victim@Example.com")
				if err == nil {
					passed.Add(1)
					return
				}
				assert.True(t, domain.IsKind(err, domain.KindTooMany), "spend: %v", err)
			})
		}
		wg.Wait()
		assert.Equal(t, int32(adapters.DefaultEmailRecipient.Count), passed.Load())
	})
}

// Welcomes counted at once are each counted, in one window that a count
// after its end starts anew.
func TestEmailBudget_RacingCountsAreEachCounted(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		clock := testfake.NewClock()
		budget := newEmailBudget(t, db, clock)
		var wg sync.WaitGroup
		for i := range 50 {
			wg.Go(func() {
				assert.NoError(t, budget.Count(testenv.Context(t), uuid.NewString(), "192.0.2."+strconv.Itoa(i%5), "Victim@Example.com"))
			})
		}
		wg.Wait()
		assert.Equal(t, 50, db.Count(t, `SELECT max(sent) FROM email_budget`), "the address's 50")
		assert.Equal(t, 10, db.Count(t, `SELECT min(sent) FROM email_budget WHERE sent > 1`), "each client's 10")
		assert.Equal(t, 56, db.Count(t, `SELECT count(*) FROM email_budget`), "one address, 50 accounts, 5 clients")

		clock.Advance(time.Hour)
		require.NoError(t, budget.Count(testenv.Context(t), uuid.NewString(), "192.0.2.0", "victim@example.com"))
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM email_budget WHERE sent >= 50`), "the address's window starts anew")
		assert.Equal(t, 53, db.Count(t, `SELECT count(*) FROM email_budget WHERE sent = 1`),
			"51 accounts, and the address and the client whose windows started anew")
	})
}

func TestEmailBudget_WindowsAndWelcomes(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		clock := testfake.NewClock()
		budget := newEmailBudget(t, db, clock)
		ctx := testenv.Context(t)
		account, client := uuid.NewString(), "198.51.100.3"

		require.NoError(t, budget.Count(ctx, account, client, "ada@example.com"), "a welcome is counted")
		require.NoError(t, budget.Spend(ctx, account, client, "ada@example.com", "ada.new@example.com"))
		require.NoError(t, budget.Spend(ctx, account, client, "ada@example.com"))
		wait := waitOf(t, budget.Spend(ctx, account, client, "ADA@example.com", "other@example.com"))
		assert.Equal(t, time.Hour, wait, "the address had 3, in any letter case: a window from its first email")
		assert.Equal(t, 4, db.Count(t, `SELECT count(*) FROM email_budget`),
			"a refused spend counts on no subject: two addresses, the account and the client")
		require.NoError(t, budget.Count(ctx, uuid.NewString(), client, "ada@example.com"),
			"a welcome is never refused")

		clock.Advance(time.Hour)
		require.NoError(t, budget.Spend(ctx, account, client, "ada@example.com"), "a new window")

		stored := strings.Join(db.RowsAsText(t, `SELECT subject FROM email_budget`), " ")
		for _, plain := range []string{"ada@example.com", account, client} {
			assert.NotContains(t, stored, plain, "subjects are keyed hashes")
		}
	})
}

func TestEmailBudget_AccountAndClient(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		budget := newEmailBudget(t, db, testfake.NewClock())
		ctx := testenv.Context(t)
		account := uuid.NewString()
		for i := range adapters.DefaultEmailAccount.Count {
			require.NoError(t, budget.Spend(ctx, account, "198.51.100."+strconv.Itoa(i), "to"+strconv.Itoa(i)+"@example.com"))
		}
		waitOf(t, budget.Spend(ctx, account, "198.51.100.99", "fresh@example.com"))

		client := "203.0.113.5"
		for i := range adapters.DefaultEmailClient.Count {
			require.NoError(t, budget.Spend(ctx, uuid.NewString(), client, "c"+strconv.Itoa(i)+"@example.com"))
		}
		waitOf(t, budget.Spend(ctx, uuid.NewString(), client, "fresh2@example.com"))
	})
}

// A sign-in's session is stored only while the credential holds the hash
// its password was compared with: a reset in between leaves it out.
func TestSessionStore_StartsOnlyOnTheCheckedCredential(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		sessions := newSessions(t, db, testfake.NewClock())
		ctx := testenv.Context(t)
		id := testenv.RegisterUser(t, store, "ada@example.com")
		_, hash, err := store.Credential(ctx, "ADA@example.com")
		require.NoError(t, err)

		_, err = sessions.Start(ctx, id, hash)
		require.NoError(t, err)
		_, err = sessions.Start(ctx, id, []byte("$2a$04$another.hash.that.the.credential.no.longer.holds"))
		assert.ErrorIs(t, err, domain.ErrInvalidCredentials)
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM sessions WHERE user_id = ?`, id))
	})
}

// Checks that race commit in any order: one that read the clock a moment
// before another, and commits after it, finds no wait within the free
// failures.
func TestPasswordGuesses_ChecksCommitInAnyOrder(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		clock := testfake.NewClock()
		guesses := newGuesses(t, db, clock)
		ctx := testenv.Context(t)
		account := uuid.NewString()
		require.NoError(t, guesses.Begin(ctx, account, "192.0.2.1"))
		clock.Advance(-time.Millisecond)
		require.NoError(t, guesses.Begin(ctx, account, "192.0.2.1"), "a check that read the clock first")
	})
}
