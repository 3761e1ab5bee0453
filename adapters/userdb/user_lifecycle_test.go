package userdb_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/userdb"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

var lifecycleKey = domain.VerificationKey(strings.Repeat("k", domain.MinVerificationKeyBytes))

func TestUserStore_SaveAppendsAtTheVersionLoaded(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		id := testenv.RegisterUser(t, store, "Ada@Example.com")
		assert.Equal(t, query.User{ID: id, Name: "Ada Lovelace", Email: "Ada@Example.com", Locale: "en",
			RegisteredAt: storeTestNow.UTC().Truncate(time.Microsecond), Version: 1}, testenv.ReadUser(t, store, id),
			"the registration's transaction wrote the read model")

		user, err := store.LoadUser(testenv.Context(t), id)
		require.NoError(t, err)
		stale, err := store.LoadUser(testenv.Context(t), id)
		require.NoError(t, err)
		token := lifecycleKey.Token(user.TokenSubject(), time.Now().Add(time.Hour))
		require.NoError(t, user.VerifyEmail(lifecycleKey, time.Hour, token, time.Now()))
		require.NoError(t, store.Save(testenv.Context(t), user))

		read := testenv.ReadUser(t, store, id)
		assert.True(t, read.EmailVerified)
		assert.Equal(t, 2, read.Version)
		require.NoError(t, stale.RequestVerificationEmail(time.Now()))
		assert.ErrorIs(t, store.Save(testenv.Context(t), stale), domain.ErrVersionMismatch, "a write since the load wins")

		assert.Equal(t, []string{"(UserRegistered,1,2)", "(EmailVerified,2,1)"}, db.RowsAsText(t,
			`SELECT event_type, stream_version, schema_version FROM events ORDER BY global_position`))
		assert.Len(t, outboxRows(t, db), 2, "each event is published")
		loaded, err := store.LoadUser(testenv.Context(t), id)
		require.NoError(t, err)
		assert.True(t, loaded.EmailVerified())
	})
}

func TestUserStore_ChangeEmail(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		ada := testenv.RegisterUser(t, store, "ada@example.com")
		testenv.RegisterUser(t, store, "bob@example.com")

		change := func(email string) error {
			user, err := store.LoadUser(testenv.Context(t), ada)
			require.NoError(t, err)
			oldKey := user.Email().Key()
			require.NoError(t, user.ChangeEmail(email, time.Now()))
			return store.ChangeEmail(testenv.Context(t), user, oldKey, "")
		}
		require.ErrorIs(t, change("BOB@example.com"), domain.ErrEmailTaken)
		require.NoError(t, change("Lovelace@Example.org"))

		read := testenv.ReadUser(t, store, ada)
		assert.Equal(t, "Lovelace@Example.org", read.Email)
		assert.Equal(t, 2, read.Version)
		found, err := store.ReadModel().UserByEmail(testenv.Context(t), "LOVELACE@example.ORG")
		require.NoError(t, err)
		assert.Equal(t, ada, found.ID, "found by address in any case")
		_, err = store.ReadModel().UserByEmail(testenv.Context(t), "ada@example.com")
		assert.ErrorIs(t, err, domain.ErrUserNotFound)
		assert.ElementsMatch(t, []string{
			"(" + testenv.LookupHash("bob@example.com") + ")", "(" + testenv.LookupHash("lovelace@example.org") + ")",
		}, db.RowsAsText(t, `SELECT email_key FROM user_emails`), "the old address is free")
		testenv.RegisterUser(t, store, "ada@example.com")
	})
}

// Twenty changes of one user made against the same version, to as many
// addresses and to one: exactly one wins, the others are stale.
func TestUserStore_ConcurrentEmailChangesOneWins(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		id := testenv.RegisterUser(t, store, "ada@example.com")
		const changes = 20
		users := make([]*domain.User, changes)
		for i := range users {
			user, err := store.LoadUser(testenv.Context(t), id)
			require.NoError(t, err)
			email := fmt.Sprintf("ada%d@example.com", i)
			if i%2 == 0 {
				email = "ada.same@example.com"
			}
			require.NoError(t, user.ChangeEmail(email, time.Now()))
			users[i] = user
		}
		var wg sync.WaitGroup
		errs := make([]error, changes)
		for i, user := range users {
			wg.Go(func() { errs[i] = store.ChangeEmail(context.Background(), user, "ada@example.com", "") })
		}
		wg.Wait()
		won := 0
		for _, err := range errs {
			if err == nil {
				won++
				continue
			}
			assert.ErrorIs(t, err, domain.ErrVersionMismatch)
		}
		assert.Equal(t, 1, won)
		assert.Equal(t, 2, db.Count(t, `SELECT count(*) FROM events`))
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM user_emails`))
		assert.Equal(t, 2, testenv.ReadUser(t, store, id).Version)
	})
}

// Version-1 UserRegistered rows, written by an older build (raw SQL), are
// read through the upcaster; the service's start projects them into the
// read model, which did not exist then.
func TestUserReadModel_PrepareProjectsOlderStreams(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		id := uuid.NewString()
		_, err := db.ExecContext(testenv.Context(t), db.Rebind(`INSERT INTO events
			(event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
			VALUES (?, ?, 1, 'UserRegistered', 1, ?, '{}')`), uuid.NewString(), id,
			`{"user_id":"`+id+`","name":"Ada","email":"Ada@Example.com","registered_at":"2024-05-06T05:08:09.123456Z"}`)
		require.NoError(t, err)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		_, err = store.ReadModel().UserByID(testenv.Context(t), id)
		require.ErrorIs(t, err, domain.ErrUserNotFound, "not projected yet")
		status, err := store.ReadModel().Status(testenv.Context(t))
		require.NoError(t, err)
		assert.Equal(t, 1, status.LagEvents)
		assert.Positive(t, status.LagSeconds)

		projected, err := store.ReadModel().Prepare(testenv.Context(t))
		require.NoError(t, err)
		assert.Equal(t, 1, projected)
		read := testenv.ReadUser(t, store, id)
		assert.Equal(t, "en", read.Locale, "upcast from version 1")
		assert.Equal(t, "Ada@Example.com", read.Email)
		user, err := store.LoadUser(testenv.Context(t), id)
		require.NoError(t, err)
		assert.Equal(t, "en", user.Locale())

		status, err = store.ReadModel().Status(testenv.Context(t))
		require.NoError(t, err)
		assert.Equal(t, userdb.ProjectionStatus{Name: "users", Checkpoint: status.Head, Head: status.Head}, status)
		projected, err = store.ReadModel().Prepare(testenv.Context(t))
		require.NoError(t, err)
		assert.Zero(t, projected, "nothing is behind any more")
	})
}

// A rebuild replays every stream into a new table and swaps it in while
// writers register and change users: no write is lost, and a row the old
// table had wrong is right again.
func TestUserReadModel_RebuildWhileWriting(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		var ids []string
		for i := range 30 {
			ids = append(ids, testenv.RegisterUser(t, store, fmt.Sprintf("user%d@example.com", i)))
		}
		_, err := db.ExecContext(testenv.Context(t), db.Rebind(`UPDATE users SET locale = 'wrong' WHERE user_id = ?`), ids[0])
		require.NoError(t, err)

		writes := make(chan string)
		go func() {
			defer close(writes)
			for i := range 20 {
				writes <- testenv.RegisterUser(t, store, fmt.Sprintf("during%d@example.com", i))
			}
		}()
		var reports []userdb.RebuildProgress
		progress, err := store.ReadModel().Rebuild(testenv.Context(t), func(p userdb.RebuildProgress) {
			reports = append(reports, p)
		})
		require.NoError(t, err)
		for id := range writes {
			ids = append(ids, id)
		}
		require.NotEmpty(t, reports)
		assert.Positive(t, reports[0].Events)

		assert.GreaterOrEqual(t, progress.Users, 30)
		for _, id := range ids {
			user, err := store.LoadUser(testenv.Context(t), id)
			require.NoError(t, err)
			assert.Equal(t, query.UserOf(user), testenv.ReadUser(t, store, id))
		}
		assert.Equal(t, len(ids), db.Count(t, `SELECT count(*) FROM users`))
		// Writes after the swap land in the new table.
		late := testenv.RegisterUser(t, store, "after@example.com")
		assert.Equal(t, "after@example.com", testenv.ReadUser(t, store, late).Email)
		status, err := store.ReadModel().Status(testenv.Context(t))
		require.NoError(t, err)
		assert.Zero(t, status.LagEvents)
	})
}

// One rebuild at a time: while another holds the lock, a rebuild is
// refused before it touches anything; a lock whose lease ran out (its
// rebuild died) is taken over; a rebuild that finds its lock taken over
// stops before the swap; a finished rebuild frees the lock.
func TestUserReadModel_OneRebuildAtATime(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		id := testenv.RegisterUser(t, store, "locked@example.com")
		_, err := db.ExecContext(testenv.Context(t), db.Rebind(`UPDATE users SET locale = 'wrong' WHERE user_id = ?`), id)
		require.NoError(t, err)
		holdLock := func(heldUntil time.Time) {
			t.Helper()
			_, err := db.ExecContext(testenv.Context(t), `DELETE FROM projection_locks`)
			require.NoError(t, err)
			_, err = db.ExecContext(testenv.Context(t), db.Rebind(
				`INSERT INTO projection_locks (name, holder, held_until_ms) VALUES ('users', 'another', ?)`),
				heldUntil.UnixMilli())
			require.NoError(t, err)
		}
		noReport := func(userdb.RebuildProgress) {}

		holdLock(time.Now().Add(userdb.RebuildLease))
		_, err = store.ReadModel().Rebuild(testenv.Context(t), noReport)
		require.ErrorIs(t, err, userdb.ErrRebuildRunning)
		assert.Equal(t, "wrong", testenv.ReadUser(t, store, id).Locale, "nothing rebuilt")

		// The other rebuild takes the lock over while this one runs.
		holdLock(time.Now().Add(-time.Second))
		_, err = store.ReadModel().Rebuild(testenv.Context(t), func(userdb.RebuildProgress) {
			_, err := db.ExecContext(testenv.Context(t), `UPDATE projection_locks SET holder = 'another'`)
			assert.NoError(t, err)
		})
		require.ErrorContains(t, err, "lost its lock")
		assert.Equal(t, "wrong", testenv.ReadUser(t, store, id).Locale, "not swapped in")

		holdLock(time.Now().Add(-time.Second))
		_, err = store.ReadModel().Rebuild(testenv.Context(t), noReport)
		require.NoError(t, err, "a lease that ran out is taken over")
		assert.NotEqual(t, "wrong", testenv.ReadUser(t, store, id).Locale, "rebuilt")
		assert.Equal(t, "Ada Lovelace", testenv.ReadUser(t, store, id).Name)
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM projection_locks`), "released")
		_, err = store.ReadModel().Rebuild(testenv.Context(t), noReport)
		require.NoError(t, err)
	})
}
