package userdb_test

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/adapters/dedup"
	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/userdb"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app/event"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// assertNothingStored fails if a row of any of the tables holds one of the
// values in plain text, base64 or hex.
func assertNothingStored(t *testing.T, db *testenv.DB, tables []string, values ...string) {
	t.Helper()
	for _, table := range tables {
		rows := strings.ToLower(strings.Join(db.RowsAsText(t, `SELECT * FROM `+db.Quote(table)), "\n"))
		require.NotEmpty(t, rows, table)
		for _, v := range values {
			for _, form := range encodings(v) {
				assert.NotContains(t, rows, strings.ToLower(form), "%s holds %q", table, v)
			}
		}
	}
}

// The personal fields of events are stored, and published into the outbox,
// sealed under the user's key; ids, times and versions stay readable, and
// the store opens them again.
func TestEventStore_SealsPersonalFields(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		ada := testenv.RegisterUser(t, store, "ada@example.com")
		changeEmail(t, store, ada, "lovelace@example.org")

		changed := testenv.StoredPayload(t, db, ada, 2)
		assert.Equal(t, ada, changed["user_id"])
		assert.Equal(t, "en", changed["locale"])
		assert.EqualValues(t, 2, changed["email_number"])
		for _, field := range []string{"old_email", "new_email"} {
			assert.True(t, strings.HasPrefix(changed[field].(string), "v1:"), field)
		}
		assertNothingStored(t, db, []string{"events", watermillsql.MessagesTable(db.DB, transport.OutboxTopic)}, "Ada Lovelace", "ada@example.com",
			"lovelace@example.org")

		loaded, err := store.LoadUser(testenv.Context(t), ada)
		require.NoError(t, err)
		assert.Equal(t, "lovelace@example.org", loaded.Email().String())
		assert.Equal(t, "Ada Lovelace", loaded.Name())
		recorded, err := store.Recorded(testenv.Context(t), ada)
		require.NoError(t, err)
		require.Len(t, recorded, 2)
		assert.Equal(t, "ada@example.com", recorded[1].Event.(domain.EmailChanged).OldEmail)
	})
}

// A sealed field is bound to its event: moved into another event of the
// same user, or altered by one byte, it does not open, and that user alone
// is corrupt-data, named by id.
func TestEventStore_MovedOrAlteredFieldIsCorrupt(t *testing.T) {
	db := testenv.StoreDB(t, testenv.Backends()[0])
	store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
	ada := testenv.RegisterUser(t, store, "ada@example.com")
	bob := testenv.RegisterUser(t, store, "bob@example.com")
	changeEmail(t, store, ada, "lovelace@example.org")

	registered, changed := testenv.StoredPayload(t, db, ada, 1), testenv.StoredPayload(t, db, ada, 2)
	changed["new_email"] = registered["email"] // the same key, another event
	moved, err := json.Marshal(changed)
	require.NoError(t, err)
	_, err = db.ExecContext(testenv.Context(t), `UPDATE events SET payload = ? WHERE stream_id = ? AND stream_version = 2`,
		string(moved), ada)
	require.NoError(t, err)
	_, err = store.LoadUser(testenv.Context(t), ada)
	require.ErrorIs(t, err, domain.ErrCorruptData)
	assert.Contains(t, err.Error(), ada)
	assert.NotContains(t, err.Error(), "example")

	bobs := testenv.StoredPayload(t, db, bob, 1)
	email := []byte(bobs["email"].(string))
	email[len(email)-4] ^= 0x01
	bobs["email"] = string(email)
	altered, err := json.Marshal(bobs)
	require.NoError(t, err)
	_, err = db.ExecContext(testenv.Context(t), `UPDATE events SET payload = ? WHERE stream_id = ?`, string(altered), bob)
	require.NoError(t, err)
	_, err = store.Recorded(testenv.Context(t), bob)
	require.ErrorIs(t, err, domain.ErrCorruptData)
	assert.Contains(t, err.Error(), bob)

	eve := testenv.RegisterUser(t, store, "eve@example.com")
	loaded, err := store.LoadUser(testenv.Context(t), eve)
	require.NoError(t, err)
	assert.Equal(t, "eve@example.com", loaded.Email().String(), "other users read")
}

// Erasing a user destroys its key, releases its address, deletes its
// credential and sessions and empties its row; its events stay, sealed
// for good, and a rebuild keeps it erased. Other users are untouched.
func TestUserStore_Erase(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		ctx := testenv.Context(t)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		ada := testenv.RegisterUser(t, store, "ada@example.com")
		bob := testenv.RegisterUser(t, store, "bob@example.com")
		sessions, err := adapters.NewSessionStore(adapters.SessionStoreConfig{DB: db.DB})
		require.NoError(t, err)
		hash, err := store.PasswordHash(ctx, ada)
		require.NoError(t, err)
		_, err = sessions.Start(ctx, ada, hash)
		require.NoError(t, err)

		testenv.EraseUser(t, store, ada)

		_, err = store.LoadUser(ctx, ada)
		require.ErrorIs(t, err, domain.ErrUserErased)
		_, err = store.ReadModel().UserByID(ctx, ada)
		require.ErrorIs(t, err, domain.ErrUserErased)
		_, err = store.ReadModel().UserByEmail(ctx, "ada@example.com")
		require.ErrorIs(t, err, domain.ErrUserNotFound, "the address is no longer the erased user's")
		for _, table := range []string{"user_keys", "credentials", "sessions", "user_emails"} {
			assert.Zero(t, db.Count(t, db.Rebind(`SELECT count(*) FROM `+table+` WHERE user_id = ?`), ada), table)
			assert.Equal(t, 1, db.Count(t, db.Rebind(`SELECT count(*) FROM `+table+` WHERE user_id = ?`), bob)+
				map[string]int{"sessions": 1}[table], "%s of another user", table)
		}
		assert.Equal(t, 2, db.Count(t, db.Rebind(`SELECT count(*) FROM events WHERE stream_id = ?`), ada),
			"the events stay, UserErased appended")
		erased := testenv.StoredPayload(t, db, ada, 2)
		assert.Equal(t, map[string]any{"user_id": ada, "erased_at": storeTestNow.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano),
			"by": "user"}, erased)

		sealed, eventID := testenv.StoredRegistration(t, db, ada, 1)
		err = dedup.NewDeduplicator(db.DB, store).Once(ctx,
			event.Claim{Handler: "H", Key: ada, Event: sealed, EventID: eventID},
			func(context.Context) error { return errors.New("must not run") })
		require.ErrorIs(t, err, domain.ErrUserErased, "a handler finds the key gone")

		_, err = store.ReadModel().Rebuild(ctx, func(userdb.RebuildProgress) {})
		require.NoError(t, err)
		_, err = store.ReadModel().UserByID(ctx, ada)
		require.ErrorIs(t, err, domain.ErrUserErased, "rebuilt, still erased")
		assert.Equal(t, "bob@example.com", testenv.ReadUser(t, store, bob).Email)
		assertNothingStored(t, db, []string{"users"}, "ada@example.com")

		again := testenv.RegisterUser(t, store, "ada@example.com")
		assert.NotEqual(t, ada, again)
		assert.Equal(t, "ada@example.com", testenv.ReadUser(t, store, again).Email, "the address registers a new user")
	})
}

// encodings are value's forms a scan looks for: plain, base64 and hex.
func encodings(v string) []string {
	return []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawStdEncoding.EncodeToString([]byte(v)),
		base64.URLEncoding.EncodeToString([]byte(v)), hex.EncodeToString([]byte(v))}
}

// changeEmail moves the user to another address through the store.
func changeEmail(t *testing.T, store *userdb.UserStore, id, email string) {
	t.Helper()
	user, err := store.LoadUser(testenv.Context(t), id)
	require.NoError(t, err)
	oldKey := user.Email().Key()
	require.NoError(t, user.ChangeEmail(email, storeTestNow))
	require.NoError(t, store.ChangeEmail(testenv.Context(t), user, oldKey, ""))
}

// A users table made before erasure gets its erased column at start, and
// its rows read as before.
func TestUserReadModel_PrepareAddsTheErasedColumn(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		ada := testenv.RegisterUser(t, store, "ada@example.com")
		_, err := db.ExecContext(testenv.Context(t), `ALTER TABLE users DROP COLUMN erased`)
		require.NoError(t, err)
		_, err = store.ReadModel().UserByID(testenv.Context(t), ada)
		require.Error(t, err, "the old table has no erased column")

		_, err = store.ReadModel().Prepare(testenv.Context(t))
		require.NoError(t, err)
		assert.Equal(t, "ada@example.com", testenv.ReadUser(t, store, ada).Email)
		_, err = store.ReadModel().Prepare(testenv.Context(t))
		require.NoError(t, err, "a second start finds the column")
	})
}

// Events an older version wrote in the clear are sealed at start, each
// once, in their own schema version's form, under their user's key, made
// first for a user registered before keys; an erased stream is left alone.
func TestUserStore_SealPlainEvents(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		ctx := testenv.Context(t)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		ada := testenv.RegisterUser(t, store, "ada@example.com")
		bob := testenv.RegisterUser(t, store, "bob@example.com")
		for id, email := range map[string]string{ada: "ada@example.com", bob: "bob@example.com"} {
			plain := `{"user_id":"` + id + `","name":"Ada Lovelace","email":"` + email + `"}` // version 1
			_, err := db.ExecContext(ctx, db.Rebind(`UPDATE events SET payload = ?, schema_version = 1 WHERE stream_id = ?`),
				plain, id)
			require.NoError(t, err)
		}
		_, err := db.ExecContext(ctx, db.Rebind(`DELETE FROM user_keys WHERE user_id = ?`), bob)
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, db.Rebind(`DELETE FROM users WHERE user_id = ?`), bob)
		require.NoError(t, err)

		n, err := store.SealPlainEvents(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		n, err = store.SealPlainEvents(ctx)
		require.NoError(t, err)
		assert.Zero(t, n, "a second run changes nothing")
		assertNothingStored(t, db, []string{"events"}, "Ada Lovelace", "ada@example.com", "bob@example.com")
		assert.NotContains(t, testenv.StoredPayload(t, db, ada, 1), "locale", "still the form of version 1")
		for id, email := range map[string]string{ada: "ada@example.com", bob: "bob@example.com"} {
			user, err := store.LoadUser(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, email, user.Email().String())
			assert.Equal(t, "Ada Lovelace", user.Name())
			assert.Equal(t, domain.DefaultLocale, user.Locale(), "upcast after opening")
		}
	})
}

// A replica that read a user keeps its key in memory, and uses it only
// for the wrapped form it came from: once another replica erased the
// user, the first reads the user erased and its handlers find the key
// gone; a rotation's new wrapped form opens as before.
func TestUserStore_KeyInMemoryFollowsTheDatabase(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		ctx := testenv.Context(t)
		a := testenv.NamedMasterKey(t, "a")
		b := testenv.NamedMasterKey(t, "b")
		first := testenv.NewUserStoreUnder(t, db.DB, slog.New(slog.DiscardHandler), testenv.MasterKeyRing(t, a, b))
		second := testenv.NewUserStoreUnder(t, db.DB, slog.New(slog.DiscardHandler), testenv.MasterKeyRing(t, b, a))
		ada := testenv.RegisterUser(t, first, "ada@example.com")
		bob := testenv.RegisterUser(t, first, "bob@example.com")
		assert.Equal(t, "ada@example.com", testenv.ReadUser(t, first, ada).Email)
		assert.Equal(t, "bob@example.com", testenv.ReadUser(t, first, bob).Email)

		_, err := secrets.RotateMasterKey(ctx, secrets.MasterKeyRotationConfig{DB: db.DB, MasterKeys: testenv.MasterKeyRing(t, b, a)})
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, db.Rebind(`UPDATE user_keys SET ciphertext = ? WHERE user_id = ?`),
			[]byte("not a key"), bob)
		require.NoError(t, err)
		assert.Equal(t, "ada@example.com", testenv.ReadUser(t, first, ada).Email, "re-wrapped, read anew")
		_, err = first.ReadModel().UserByID(ctx, bob)
		require.ErrorIs(t, err, domain.ErrCorruptData, "an altered wrapped key is not the one in memory")

		testenv.EraseUser(t, second, ada)
		_, err = first.ReadModel().UserByID(ctx, ada)
		require.ErrorIs(t, err, domain.ErrUserErased)
		sealed, eventID := testenv.StoredRegistration(t, db, ada, 1)
		err = dedup.NewDeduplicator(db.DB, first).Once(ctx,
			event.Claim{Handler: "H", Key: ada, Event: sealed, EventID: eventID},
			func(context.Context) error { return errors.New("must not run") })
		require.ErrorIs(t, err, domain.ErrUserErased, "the key is gone for the replica that held it too")
	})
}
