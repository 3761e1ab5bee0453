package secrets_test

import (
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/internal/testenv"
)

// serverKeyNames are the server keys the rotation tests make.
var serverKeyNames = []string{secrets.VerificationKeySecret, secrets.IdempotencyKeySecret, secrets.EmailLookupSecret}

// keysUnder makes the server keys and registers users under master: it
// returns the keys by name and the users' rows by id.
func keysUnder(t *testing.T, db *testenv.DB, master *secrets.MasterKeys, users int) (map[string][]byte,
	map[string]query.User) {
	t.Helper()
	opened := map[string][]byte{}
	for _, name := range serverKeyNames {
		secret, err := secrets.NewServerKeys(db.DB, master).Secret(testenv.Context(t), name)
		require.NoError(t, err)
		opened[name] = secret
	}
	store := testenv.NewUserStoreUnder(t, db.DB, slog.New(slog.DiscardHandler), master)
	rows := map[string]query.User{}
	for i := range users {
		id := testenv.RegisterUser(t, store, "user"+string(rune('a'+i))+"@example.com")
		rows[id] = testenv.ReadUser(t, store, id)
	}
	return opened, rows
}

// assertKeysOpen checks that every server key and every user's row reads
// as before under master, and that its check passes.
func assertKeysOpen(t *testing.T, db *testenv.DB, master *secrets.MasterKeys, opened map[string][]byte,
	users map[string]query.User) {
	t.Helper()
	keys := secrets.NewServerKeys(db.DB, master)
	require.NoError(t, keys.Check(testenv.Context(t)))
	for name, want := range opened {
		got, err := keys.Secret(testenv.Context(t), name)
		require.NoError(t, err, name)
		assert.Equal(t, want, got, "the %s key is the same key", name)
	}
	store := testenv.NewUserStoreUnder(t, db.DB, slog.New(slog.DiscardHandler), master)
	for id, want := range users {
		assert.Equal(t, want, testenv.ReadUser(t, store, id), "user %s reads as before", id)
	}
}

// Keys wrapped under A, rotated under the ring [B, A], open under B alone:
// the server keys are the same, every user reads the same row. The start
// check refuses B alone before the rotation, naming A and how many keys
// it wraps, never a key. A second rotation changes nothing.
func TestRotateMasterKey(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		ctx := testenv.Context(t)
		a, encodedA := newNamedMasterKey(t, "a")
		b, encodedB := newNamedMasterKey(t, "b")
		const users = 5
		serverSecrets, rows := keysUnder(t, db, testenv.MasterKeyRing(t, a), users)

		err := secrets.NewServerKeys(db.DB, testenv.MasterKeyRing(t, b)).Check(ctx)
		require.ErrorIs(t, err, secrets.ErrUnknownMasterKey)
		assert.Equal(t, "unknown master key: the database holds keys wrapped under master key a (3 server keys, "+
			"5 users' keys), not among the master keys given (b)", err.Error())
		assertNoKey(t, err.Error(), encodedA, encodedB)

		var progress []secrets.RotationProgress
		done, err := secrets.RotateMasterKey(ctx, secrets.MasterKeyRotationConfig{
			DB: db.DB, MasterKeys: testenv.MasterKeyRing(t, b, a), BatchSize: 2,
			Progress: func(p secrets.RotationProgress) { progress = append(progress, p) },
		})
		require.NoError(t, err)
		assert.Equal(t, "b", done.Current)
		assert.Equal(t, []string{"a"}, done.From)
		assert.Equal(t, 3, done.ServerKeys)
		assert.Equal(t, users, done.UserKeys)
		assert.Zero(t, done.Raced)
		var tables []string
		var counts []int
		for _, p := range progress {
			tables, counts = append(tables, p.Table), append(counts, p.Done)
			assert.Equal(t, 8, p.Total)
		}
		assert.Equal(t, []string{"server_keys", "server_keys", "user_keys", "user_keys", "user_keys"}, tables,
			"a line per batch of 2")
		assert.Equal(t, []int{2, 3, 5, 7, 8}, counts)
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM server_keys WHERE master_key_id <> 'b'`))
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM user_keys WHERE master_key_id <> 'b'`))

		assertKeysOpen(t, db, testenv.MasterKeyRing(t, b), serverSecrets, rows)

		again, err := secrets.RotateMasterKey(ctx, secrets.MasterKeyRotationConfig{
			DB: db.DB, MasterKeys: testenv.MasterKeyRing(t, b, a),
			Progress: func(secrets.RotationProgress) { t.Error("a second rotation has no batch") },
		})
		require.NoError(t, err)
		assert.Equal(t, secrets.Rotation{Current: "b", Elapsed: again.Elapsed}, again, "nothing changed")
	})
}

// A row another rotation re-wrapped between a run's read and its write is
// left as the other wrote it: each key is re-wrapped once, and opens.
func TestRotateMasterKey_RowsChangedMeanwhileAreLeft(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		ctx := testenv.Context(t)
		a, _ := newNamedMasterKey(t, "a")
		b, _ := newNamedMasterKey(t, "b")
		serverSecrets, rows := keysUnder(t, db, testenv.MasterKeyRing(t, a), 3)
		ring := testenv.MasterKeyRing(t, b, a)

		write, err := secrets.ReadUserKeysToRotate(ctx, db.DB, ring)
		require.NoError(t, err)
		first, err := secrets.RotateMasterKey(ctx, secrets.MasterKeyRotationConfig{DB: db.DB, MasterKeys: ring})
		require.NoError(t, err)
		assert.Equal(t, 3, first.UserKeys)
		stored := db.RowsAsText(t, `SELECT user_id, nonce, ciphertext FROM user_keys ORDER BY user_id`)

		rewrapped, err := write()
		require.NoError(t, err)
		assert.Zero(t, rewrapped, "the rows read changed meanwhile")
		assert.Equal(t, stored, db.RowsAsText(t, `SELECT user_id, nonce, ciphertext FROM user_keys ORDER BY user_id`))
		assertKeysOpen(t, db, testenv.MasterKeyRing(t, b), serverSecrets, rows)
	})
}

// A key written under an older key after the rotation read its table
// (a replica not restarted with the new key first) fails the rotation,
// which says how many are left; the next run re-wraps it.
func TestRotateMasterKey_KeysWrittenMeanwhileUnderAnOlderKey(t *testing.T) {
	db := testenv.StoreDB(t, testenv.Backends()[0])
	ctx := testenv.Context(t)
	a, _ := newNamedMasterKey(t, "a")
	b, _ := newNamedMasterKey(t, "b")
	_, rows := keysUnder(t, db, testenv.MasterKeyRing(t, a), 1)
	oldReplica := testenv.NewUserStoreUnder(t, db.DB, slog.New(slog.DiscardHandler), testenv.MasterKeyRing(t, a))
	const late = "00000000-0000-4000-8000-000000000000" // behind the rotation's cursor
	registered := false
	_, err := secrets.RotateMasterKey(ctx, secrets.MasterKeyRotationConfig{DB: db.DB, MasterKeys: testenv.MasterKeyRing(t, b, a),
		Progress: func(p secrets.RotationProgress) {
			if p.Table == "user_keys" && !registered {
				registered = true
				testenv.RegisterUserAs(t, oldReplica, late, "Late Comer", "late@example.com")
			}
		}})
	require.ErrorIs(t, err, secrets.ErrRotationIncomplete)
	assert.Equal(t, "keys are still wrapped under an older master key: 1 were written since the rotation started by a "+
		"process whose current master key is not b", err.Error())

	rows[late] = testenv.ReadUser(t, oldReplica, late)
	assert.Equal(t, "Late Comer", rows[late].Name)
	done, err := secrets.RotateMasterKey(ctx, secrets.MasterKeyRotationConfig{DB: db.DB, MasterKeys: testenv.MasterKeyRing(t, b, a)})
	require.NoError(t, err)
	assert.Equal(t, 1, done.UserKeys)
	assertKeysOpen(t, db, testenv.MasterKeyRing(t, b), nil, rows)
}

// A user's key altered in the database does not stop the rotation: the
// others are re-wrapped, and the rotation fails at its end naming it.
func TestRotateMasterKey_AnAlteredKeyIsLeftAndNamed(t *testing.T) {
	db := testenv.StoreDB(t, testenv.Backends()[0])
	ctx := testenv.Context(t)
	a, _ := newNamedMasterKey(t, "a")
	b, _ := newNamedMasterKey(t, "b")
	serverSecrets, rows := keysUnder(t, db, testenv.MasterKeyRing(t, a), 3)
	var altered string
	for id := range rows {
		altered = id
		break
	}
	_, err := db.ExecContext(ctx, `UPDATE user_keys SET ciphertext = ? WHERE user_id = ?`, make([]byte, 48), altered)
	require.NoError(t, err)
	delete(rows, altered)

	done, err := secrets.RotateMasterKey(ctx, secrets.MasterKeyRotationConfig{DB: db.DB, MasterKeys: testenv.MasterKeyRing(t, b, a),
		BatchSize: 1})
	require.ErrorIs(t, err, secrets.ErrRotationIncomplete)
	assert.Equal(t, "keys are still wrapped under an older master key: 1 do not open under the master key their row "+
		"names, each its user's Corrupt data (user:"+altered+")", err.Error())
	assert.Equal(t, []string{"user:" + altered}, done.Unopened)
	assert.Equal(t, 2, done.UserKeys, "the others are re-wrapped")
	assert.Zero(t, done.Raced)
	assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM user_keys WHERE master_key_id = 'a'`))

	_, err = db.ExecContext(ctx, `DELETE FROM user_keys WHERE user_id = ?`, altered) // as an erasure would
	require.NoError(t, err)
	assertKeysOpen(t, db, testenv.MasterKeyRing(t, b), serverSecrets, rows)
}
