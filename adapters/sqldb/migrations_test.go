package sqldb_test

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/internal/testenv"
)

// Migration 00008 deletes the plain keys an older build kept in
// server_secrets, so that a backup holding them signs nothing the service
// accepts from then on; the random values that name the namespace and the
// deployment stay as they were. The next start makes new keys, wrapped.
func TestMigration8_DeletesThePlainKeys(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		dbURL := backend.URL(t)
		ctx := testenv.Context(t)
		oldDB, err := sqldb.OpenAt(ctx, dbURL, 6)
		require.NoError(t, err)
		old := testenv.NewDB(oldDB)
		plain := map[string][]byte{}
		for _, name := range []string{"verify-email", "idempotency-key", "pubsub-namespace", "deployment-id"} {
			plain[name] = make([]byte, 32)
			_, _ = rand.Read(plain[name])
			_, err = old.Exec(old.Rebind(`INSERT INTO server_secrets (name, secret) VALUES (?, ?)`), name, plain[name])
			require.NoError(t, err)
		}
		require.NoError(t, old.Close())

		db, err := sqldb.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })
		kept := map[string][]byte{}
		for _, name := range []string{"verify-email", "idempotency-key", "pubsub-namespace", "deployment-id"} {
			var value []byte
			if err := db.QueryRowContext(ctx, sqldb.Of(db).Rebind(`SELECT secret FROM server_secrets WHERE name = ?`),
				name).Scan(&value); err == nil {
				kept[name] = value
			}
		}
		assert.Equal(t, map[string][]byte{"pubsub-namespace": plain["pubsub-namespace"],
			"deployment-id": plain["deployment-id"]}, kept, "the plain keys are gone, the names stay")

		master, err := secrets.NewMasterKey(bytes.Repeat([]byte{9}, secrets.MasterKeyBytes))
		require.NoError(t, err)
		for _, name := range []string{secrets.VerificationKeySecret, secrets.IdempotencyKeySecret} {
			key, err := secrets.NewServerKeys(db, secrets.OneMasterKey(master)).Secret(ctx, name)
			require.NoError(t, err)
			assert.NotEqual(t, plain[name], key, "a new %s key", name)
		}
	})
}
