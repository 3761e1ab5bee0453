package operator

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
	"github.com/onboard/onboard/service"
)

// `onboard keys rotate` moves a deployment from MASTER_KEY to a new key:
// with the old key listed after the new one in MASTER_KEYS, it re-wraps
// every key under the new one, a progress line per batch on its progress
// output; then the new key alone opens them, and every user reads as
// before. A second run changes nothing and says so. Before the rotation,
// the new key alone is refused, clearly.
func TestKeysRotate(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		ctx := testenv.Context(t)
		dbURL := backend.URL(t)
		oldKey, newKey := testenv.NewMasterKey(), testenv.NewMasterKey()
		config := func(vars map[string]string) service.Config {
			t.Helper()
			vars["DATABASE_URL"] = dbURL
			cfg, err := service.LoadConfig(func(name string) string { return vars[name] })
			require.NoError(t, err)
			return cfg
		}
		db, err := sqldb.Open(ctx, dbURL, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		t.Cleanup(func() { _ = db.Close() })

		// The tables a service's start makes: the outbox, the users read model.
		outbox, err := watermillsql.NewSQLSubscriber(db, "forwarder", watermill.NopLogger{})
		require.NoError(t, err)
		require.NoError(t, outbox.SubscribeInitialize(transport.OutboxTopic))
		require.NoError(t, outbox.Close())
		before := config(map[string]string{"MASTER_KEY": oldKey})
		store, err := service.OpenUserStore(ctx, before, db)
		require.NoError(t, err)
		_, err = store.ReadModel().Prepare(ctx)
		require.NoError(t, err)
		users := map[string]query.User{}
		for _, email := range []string{"ada@example.com", "bob@example.com", "eve@example.com"} {
			user, err := domain.NewUser(uuid.NewString(), "Ada Lovelace", email, "correct horse battery", "", time.Now())
			require.NoError(t, err)
			require.NoError(t, store.Register(ctx, user, []byte("a hash"), nil))
			users[user.ID()], err = store.ReadModel().UserByID(ctx, user.ID())
			require.NoError(t, err)
		}

		newOnly := config(map[string]string{"MASTER_KEYS": "2026:" + newKey})
		var out, progress strings.Builder
		err = Run(ctx, newOnly, []string{"keys", "rotate"}, &out, &progress)
		require.Error(t, err, "the new key alone opens nothing yet")
		assert.Contains(t, err.Error(), "MASTER_KEYS does not open the keys stored in the database")
		assert.Contains(t, err.Error(), "users' keys")
		assert.Contains(t, err.Error(), "run onboard keys rotate")
		for _, key := range []string{oldKey, newKey} {
			assert.NotContains(t, err.Error(), key[:12], "never a key")
		}

		both := config(map[string]string{"MASTER_KEYS": "2026:" + newKey + ",2025:" + oldKey})
		out.Reset()
		require.NoError(t, Run(ctx, both, []string{"keys", "rotate"}, &out, &progress))
		t.Log(progress.String(), out.String())
		assert.Regexp(t, `^keys rotate: 1 of 4 keys re-wrapped under master key 2026 \(server_keys\), [0-9.]+[mµ]?s elapsed
keys rotate: 4 of 4 keys re-wrapped under master key 2026 \(user_keys\), [0-9.]+[mµ]?s elapsed
$`, progress.String())
		assert.Regexp(t, `^re-wrapped 1 server keys and 3 users' keys from master key 2025 under 2026 in [0-9.]+[mµ]?s
no stored key needs master key 2025 any more: remove it from MASTER_KEYS and restart every replica
$`, out.String())

		out.Reset()
		progress.Reset()
		require.NoError(t, Run(ctx, both, []string{"keys", "rotate"}, &out, &progress))
		assert.Empty(t, progress.String())
		assert.True(t, strings.HasPrefix(out.String(), "nothing to re-wrap: every key is wrapped under master key 2026\n"),
			out.String())

		store, err = service.OpenUserStore(ctx, newOnly, db)
		require.NoError(t, err, "the new key alone opens every key")
		for id, want := range users {
			got, err := store.ReadModel().UserByID(ctx, id)
			require.NoError(t, err)
			assert.Equal(t, want, got)
		}
	})
}

// A database without keys under an older master key has nothing to
// re-wrap, and no older key to remove.
func TestKeysRotate_NothingToRewrap(t *testing.T) {
	var out, progress strings.Builder
	cfg, err := service.LoadConfig(func(name string) string {
		return map[string]string{"DATABASE_URL": testenv.SQLiteDatabase(t), "MASTER_KEYS": "a:" + testenv.NewMasterKey()}[name]
	})
	require.NoError(t, err)
	require.NoError(t, Run(context.Background(), cfg, []string{"keys", "rotate"}, &out, &progress))
	assert.Empty(t, progress.String(), "an empty database: no batch")
	assert.Equal(t, "nothing to re-wrap: every key is wrapped under master key a\n", out.String())
	assert.NotContains(t, out.String(), "no stored key needs", "no older key to remove")
}
