package userdb_test

import (
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// assertNotStored fails if any row of the users read model holds one of
// the values in plain text, base64 or hex.
func assertNotStored(t *testing.T, db *testenv.DB, values ...string) {
	t.Helper()
	rows := strings.ToLower(strings.Join(db.RowsAsText(t, `SELECT * FROM users`), "\n"))
	require.NotEmpty(t, rows)
	for _, v := range values {
		for _, form := range encodings(v) {
			assert.NotContains(t, rows, strings.ToLower(form), "users holds %q", v)
		}
	}
}

// The users read model holds names and addresses encrypted under each
// user's key, and reads them back.
func TestUserReadModel_EncryptsNamesAndAddresses(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		ada := testenv.RegisterUser(t, store, "ada@example.com")
		bob := testenv.RegisterUser(t, store, "bob@example.com")
		changeEmail(t, store, ada, "Lovelace@Example.org")

		assert.Equal(t, 2, db.Count(t, `SELECT count(*) FROM user_keys`))
		assertNotStored(t, db, "Ada Lovelace", "ada@example.com", "bob@example.com", "Lovelace@Example.org")
		assert.Equal(t, "Lovelace@Example.org", testenv.ReadUser(t, store, ada).Email)
		assert.Equal(t, "Ada Lovelace", testenv.ReadUser(t, store, ada).Name)
		found, err := store.ReadModel().UserByEmail(testenv.Context(t), "BOB@example.com")
		require.NoError(t, err)
		assert.Equal(t, bob, found.ID)
		assert.Equal(t, "bob@example.com", found.Email)
	})
}

// Rows an older version wrote in the clear, of users without a key, are
// encrypted at start, each once, under a key made for them.
func TestUserReadModel_SealPlainRows(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		ada := testenv.RegisterUser(t, store, "ada@example.com")
		bob := testenv.RegisterUser(t, store, "bob@example.com")
		for id, email := range map[string]string{ada: "ada@example.com", bob: "bob@example.com"} {
			_, err := db.ExecContext(testenv.Context(t), db.Rebind(
				`UPDATE users SET name = 'Ada Lovelace', email = ? WHERE user_id = ?`), email, id)
			require.NoError(t, err)
		}
		_, err := db.ExecContext(testenv.Context(t), db.Rebind(`DELETE FROM user_keys WHERE user_id = ?`), bob)
		require.NoError(t, err)
		assert.Equal(t, "bob@example.com", testenv.ReadUser(t, store, bob).Email, "a user without a key reads in the clear")

		n, err := store.ReadModel().SealPlainRows(testenv.Context(t))
		require.NoError(t, err)
		assert.Equal(t, 2, n)
		n, err = store.ReadModel().SealPlainRows(testenv.Context(t))
		require.NoError(t, err)
		assert.Zero(t, n, "a second run changes nothing")

		assert.Equal(t, 2, db.Count(t, `SELECT count(*) FROM user_keys`))
		assertNotStored(t, db, "Ada Lovelace", "ada@example.com", "bob@example.com")
		assert.Equal(t, "ada@example.com", testenv.ReadUser(t, store, ada).Email)
		assert.Equal(t, "bob@example.com", testenv.ReadUser(t, store, bob).Email)
		assert.Equal(t, "Ada Lovelace", testenv.ReadUser(t, store, bob).Name)
	})
}

// A flipped byte in a stored field or in a wrapped key is corrupt-data for
// that user alone.
func TestUserReadModel_TamperedDataIsCorrupt(t *testing.T) {
	db := testenv.StoreDB(t, testenv.Backends()[0])
	store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
	ada := testenv.RegisterUser(t, store, "ada@example.com")
	bob := testenv.RegisterUser(t, store, "bob@example.com")
	eve := testenv.RegisterUser(t, store, "eve@example.com")

	var name string
	require.NoError(t, db.QueryRow(`SELECT name FROM users WHERE user_id = ?`, ada).Scan(&name))
	flipped := []byte(name)
	flipped[len(flipped)-3] ^= 0x01
	_, err := db.ExecContext(testenv.Context(t), `UPDATE users SET name = ? WHERE user_id = ?`, string(flipped), ada)
	require.NoError(t, err)
	var wrapped []byte
	require.NoError(t, db.QueryRow(`SELECT ciphertext FROM user_keys WHERE user_id = ?`, bob).Scan(&wrapped))
	wrapped[0] ^= 0x01
	_, err = db.ExecContext(testenv.Context(t), `UPDATE user_keys SET ciphertext = ? WHERE user_id = ?`, wrapped, bob)
	require.NoError(t, err)

	for _, id := range []string{ada, bob} {
		_, err := store.ReadModel().UserByID(testenv.Context(t), id)
		require.ErrorIs(t, err, domain.ErrCorruptData)
		assert.Contains(t, err.Error(), id)
		assert.NotContains(t, err.Error(), "example.com")
	}
	_, err = store.ReadModel().UserByEmail(testenv.Context(t), "bob@example.com")
	require.ErrorIs(t, err, domain.ErrCorruptData)
	assert.Equal(t, "eve@example.com", testenv.ReadUser(t, store, eve).Email, "other users read")
}
