package secrets_test

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// The first replica makes a key at random; every other replica and every
// restart reads the same one, through the same master key.
func TestServerKeys_MadeOnceSharedByEveryReplica(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		ctx := testenv.Context(t)
		master, _ := newMasterKey(t)

		const replicas = 4
		opened := make([][]byte, replicas)
		var wg sync.WaitGroup
		for i := range opened {
			wg.Go(func() {
				var err error
				opened[i], err = secrets.NewServerKeys(db.DB, secrets.OneMasterKey(master)).Secret(ctx, secrets.VerificationKeySecret)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		require.Len(t, opened[0], secrets.ServerKeyBytes)
		for _, s := range opened[1:] {
			assert.Equal(t, opened[0], s, "every replica reads the same key")
		}
		restarted := secrets.NewServerKeys(db.DB, secrets.OneMasterKey(master))
		again, err := restarted.Secret(ctx, secrets.VerificationKeySecret)
		require.NoError(t, err)
		assert.Equal(t, opened[0], again, "a restart reads the stored key")
		again[0] ^= 1
		kept, err := restarted.Secret(ctx, secrets.VerificationKeySecret)
		require.NoError(t, err)
		assert.Equal(t, opened[0], kept, "a caller's change to its copy changes nothing")

		other, err := restarted.Secret(ctx, secrets.IdempotencyKeySecret)
		require.NoError(t, err)
		assert.NotEqual(t, opened[0], other, "one key per purpose")
		assert.Equal(t, 2, db.Count(t, `SELECT count(*) FROM server_keys`))
		assert.Equal(t, 2, db.Count(t, `SELECT count(*) FROM server_keys WHERE master_key_id = ?`, master.ID()),
			"each row names its master key")
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM server_secrets`), "nothing plain")
		require.NoError(t, restarted.Check(ctx))
	})
}

// What the table keeps is not the key: no column holds it, whole or in
// part, and none of them signs what the key signs.
func TestServerKeys_StoredBytesAreNotTheKey(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		master, _ := newMasterKey(t)
		secret, err := secrets.NewServerKeys(db.DB, secrets.OneMasterKey(master)).Secret(testenv.Context(t), secrets.VerificationKeySecret)
		require.NoError(t, err)

		rows := db.RowsAsText(t, `SELECT * FROM server_keys`)
		require.Len(t, rows, 1)
		for _, part := range [][]byte{secret, secret[:8], secret[8:16], secret[24:]} {
			assert.NotContains(t, rows[0], string(part))
			assert.NotContains(t, rows[0], hexOf(part))
		}
		var nonce, ciphertext []byte
		require.NoError(t, db.QueryRow(`SELECT nonce, ciphertext FROM server_keys`).Scan(&nonce, &ciphertext))
		assert.Len(t, ciphertext, len(secret)+16, "the key sealed, and GCM's tag")
		assert.False(t, bytes.Contains(ciphertext, secret[:8]))
	})
}

// A master key other than the one that wrapped the stored keys is refused,
// by Secret and by Check, naming both keys by their ids; nothing is
// overwritten.
func TestServerKeys_WrongMasterKeyIsRefused(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		ctx := testenv.Context(t)
		master, _ := newMasterKey(t)
		wrong, _ := newMasterKey(t)
		secret, err := secrets.NewServerKeys(db.DB, secrets.OneMasterKey(master)).Secret(ctx, secrets.IdempotencyKeySecret)
		require.NoError(t, err)

		keys := secrets.NewServerKeys(db.DB, secrets.OneMasterKey(wrong))
		err = keys.Check(ctx)
		require.ErrorIs(t, err, secrets.ErrWrongMasterKey)
		assert.Contains(t, err.Error(), master.ID())
		assert.Contains(t, err.Error(), wrong.ID())
		_, err = keys.Secret(ctx, secrets.IdempotencyKeySecret)
		require.ErrorIs(t, err, secrets.ErrWrongMasterKey)

		kept, err := secrets.NewServerKeys(db.DB, secrets.OneMasterKey(master)).Secret(ctx, secrets.IdempotencyKeySecret)
		require.NoError(t, err)
		assert.Equal(t, secret, kept, "the stored key is untouched")
		assert.NoError(t, secrets.NewServerKeys(db.DB, secrets.OneMasterKey(master)).Check(ctx))
	})
}

// Users still wrapped under a key the ring lost stop the check, however
// the server keys are wrapped; a key under a known id that does not open
// is a wrong key.
func TestServerKeysCheck_UsersUnderARemovedKey(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		ctx := testenv.Context(t)
		a, _ := newNamedMasterKey(t, "a")
		b, _ := newNamedMasterKey(t, "b")
		_, err := secrets.NewServerKeys(db.DB, testenv.MasterKeyRing(t, b)).Secret(ctx, secrets.VerificationKeySecret)
		require.NoError(t, err)
		store := testenv.NewUserStoreUnder(t, db.DB, slog.New(slog.DiscardHandler), testenv.MasterKeyRing(t, a))
		for _, email := range []string{"ada@example.com", "bob@example.com"} {
			testenv.RegisterUser(t, store, email)
		}
		err = secrets.NewServerKeys(db.DB, testenv.MasterKeyRing(t, b)).Check(ctx)
		require.ErrorIs(t, err, secrets.ErrUnknownMasterKey)
		assert.Contains(t, err.Error(), "master key a (0 server keys, 2 users' keys)")
		require.NoError(t, secrets.NewServerKeys(db.DB, testenv.MasterKeyRing(t, b, a)).Check(ctx))

		otherA, _ := newNamedMasterKey(t, "a")
		err = secrets.NewServerKeys(db.DB, testenv.MasterKeyRing(t, b, otherA)).Check(ctx)
		require.ErrorIs(t, err, secrets.ErrWrongMasterKey)
		assert.NotErrorIs(t, err, secrets.ErrUnknownMasterKey)
		assert.Contains(t, err.Error(), "master key a does not open the \"user:")
	})
}

// One user's altered key is that user's Corrupt data: the check, which
// opens a few users' keys per master key, still passes while another
// opens.
func TestServerKeysCheck_OneAlteredUserKeyIsNoWrongMasterKey(t *testing.T) {
	db := testenv.StoreDB(t, testenv.Backends()[0])
	ctx := testenv.Context(t)
	a, _ := newNamedMasterKey(t, "a")
	store := testenv.NewUserStoreUnder(t, db.DB, slog.New(slog.DiscardHandler), testenv.MasterKeyRing(t, a))
	altered := testenv.RegisterUser(t, store, "ada@example.com")
	testenv.RegisterUser(t, store, "bob@example.com")
	_, err := db.ExecContext(ctx, `UPDATE user_keys SET ciphertext = ? WHERE user_id = ?`, make([]byte, 48), altered)
	require.NoError(t, err)

	require.NoError(t, secrets.NewServerKeys(db.DB, testenv.MasterKeyRing(t, a)).Check(ctx))
	_, err = store.ReadModel().UserByID(ctx, altered)
	require.ErrorIs(t, err, domain.ErrCorruptData, "the altered user alone is Corrupt")
}
