package adapters_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

// The first replica makes a key at random; every other replica and every
// restart reads the same one, through the same master key.
func TestServerKeys_MadeOnceSharedByEveryReplica(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		ctx := testTimeoutCtx(t)
		master, _ := newMasterKey(t)

		const replicas = 4
		secrets := make([][]byte, replicas)
		var wg sync.WaitGroup
		for i := range secrets {
			wg.Go(func() {
				var err error
				secrets[i], err = adapters.NewServerKeys(db.DB, adapters.OneMasterKey(master)).Secret(ctx, adapters.VerificationKeySecret)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		require.Len(t, secrets[0], adapters.ServerKeyBytes)
		for _, s := range secrets[1:] {
			assert.Equal(t, secrets[0], s, "every replica reads the same key")
		}
		restarted := adapters.NewServerKeys(db.DB, adapters.OneMasterKey(master))
		again, err := restarted.Secret(ctx, adapters.VerificationKeySecret)
		require.NoError(t, err)
		assert.Equal(t, secrets[0], again, "a restart reads the stored key")
		again[0] ^= 1
		kept, err := restarted.Secret(ctx, adapters.VerificationKeySecret)
		require.NoError(t, err)
		assert.Equal(t, secrets[0], kept, "a caller's change to its copy changes nothing")

		other, err := restarted.Secret(ctx, adapters.IdempotencyKeySecret)
		require.NoError(t, err)
		assert.NotEqual(t, secrets[0], other, "one key per purpose")
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
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		master, _ := newMasterKey(t)
		secret, err := adapters.NewServerKeys(db.DB, adapters.OneMasterKey(master)).Secret(testTimeoutCtx(t), adapters.VerificationKeySecret)
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
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		ctx := testTimeoutCtx(t)
		master, _ := newMasterKey(t)
		wrong, _ := newMasterKey(t)
		secret, err := adapters.NewServerKeys(db.DB, adapters.OneMasterKey(master)).Secret(ctx, adapters.IdempotencyKeySecret)
		require.NoError(t, err)

		keys := adapters.NewServerKeys(db.DB, adapters.OneMasterKey(wrong))
		err = keys.Check(ctx)
		require.ErrorIs(t, err, adapters.ErrWrongMasterKey)
		assert.Contains(t, err.Error(), master.ID())
		assert.Contains(t, err.Error(), wrong.ID())
		_, err = keys.Secret(ctx, adapters.IdempotencyKeySecret)
		require.ErrorIs(t, err, adapters.ErrWrongMasterKey)

		kept, err := adapters.NewServerKeys(db.DB, adapters.OneMasterKey(master)).Secret(ctx, adapters.IdempotencyKeySecret)
		require.NoError(t, err)
		assert.Equal(t, secret, kept, "the stored key is untouched")
		assert.NoError(t, adapters.NewServerKeys(db.DB, adapters.OneMasterKey(master)).Check(ctx))
	})
}

// Users still wrapped under a key the ring lost stop the check, however
// the server keys are wrapped; a key under a known id that does not open
// is a wrong key.
func TestServerKeysCheck_UsersUnderARemovedKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := storeDB(t, backend)
		ctx := testTimeoutCtx(t)
		a, _ := newNamedMasterKey(t, "a")
		b, _ := newNamedMasterKey(t, "b")
		_, err := adapters.NewServerKeys(db.DB, newMasterKeys(t, b)).Secret(ctx, adapters.VerificationKeySecret)
		require.NoError(t, err)
		store := testenv.NewUserStoreUnder(t, db.DB, quietLogger(), newMasterKeys(t, a))
		for _, email := range []string{"ada@example.com", "bob@example.com"} {
			registerUser(t, store, email)
		}
		err = adapters.NewServerKeys(db.DB, newMasterKeys(t, b)).Check(ctx)
		require.ErrorIs(t, err, adapters.ErrUnknownMasterKey)
		assert.Contains(t, err.Error(), "master key a (0 server keys, 2 users' keys)")
		require.NoError(t, adapters.NewServerKeys(db.DB, newMasterKeys(t, b, a)).Check(ctx))

		otherA, _ := newNamedMasterKey(t, "a")
		err = adapters.NewServerKeys(db.DB, newMasterKeys(t, b, otherA)).Check(ctx)
		require.ErrorIs(t, err, adapters.ErrWrongMasterKey)
		assert.NotErrorIs(t, err, adapters.ErrUnknownMasterKey)
		assert.Contains(t, err.Error(), "master key a does not open the \"user:")
	})
}

// One user's altered key is that user's corrupt data: the check, which
// opens a few users' keys per master key, still passes while another
// opens.
func TestServerKeysCheck_OneAlteredUserKeyIsNoWrongMasterKey(t *testing.T) {
	db := storeDB(t, testenv.Backends()[0])
	ctx := testTimeoutCtx(t)
	a, _ := newNamedMasterKey(t, "a")
	store := testenv.NewUserStoreUnder(t, db.DB, quietLogger(), newMasterKeys(t, a))
	altered := registerUser(t, store, "ada@example.com")
	registerUser(t, store, "bob@example.com")
	_, err := db.ExecContext(ctx, `UPDATE user_keys SET ciphertext = ? WHERE user_id = ?`, make([]byte, 48), altered)
	require.NoError(t, err)

	require.NoError(t, adapters.NewServerKeys(db.DB, newMasterKeys(t, a)).Check(ctx))
	_, err = store.ReadModel().UserByID(ctx, altered)
	require.ErrorIs(t, err, domain.ErrCorruptData, "the altered user alone is corrupt")
}
