package userdb_test

import (
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/userdb"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

func TestUserStore_NeedsALookupKey(t *testing.T) {
	db := testenv.StoreDB(t, testenv.Backends()[0])
	for _, key := range [][]byte{nil, []byte("short")} {
		_, err := userdb.NewUserStoreWithConfig(userdb.UserStoreConfig{DB: db.DB, LookupKey: key})
		assert.ErrorContains(t, err, "lookup key")
	}
}

// A database written before the hashes holds addresses as keys: replicas
// starting at once each rewrite them to their hashes, every row once, and
// the addresses are found as before.
func TestUserStore_HashPlainEmailKeys(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.StoreDB(t, backend)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		addresses := []string{"Ada@Example.com", "bob@example.com", "carol@example.org"}
		ids := map[string]string{}
		for _, address := range addresses {
			id := testenv.RegisterUser(t, store, address)
			ids[address] = id
			for _, table := range []string{"user_emails", userdb.UsersTable} {
				_, err := db.ExecContext(testenv.Context(t),
					db.Rebind(`UPDATE `+table+` SET email_key = ? WHERE user_id = ?`), strings.ToLower(address), id)
				require.NoError(t, err)
			}
		}

		var (
			wg      sync.WaitGroup
			changed atomic.Int64
		)
		for range 3 {
			wg.Go(func() {
				n, err := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler)).HashPlainEmailKeys(testenv.Context(t))
				assert.NoError(t, err)
				changed.Add(int64(n))
			})
		}
		wg.Wait()
		assert.Equal(t, int64(2*len(addresses)), changed.Load(), "each row rewritten once")
		n, err := store.HashPlainEmailKeys(testenv.Context(t))
		require.NoError(t, err)
		assert.Zero(t, n, "a second run changes nothing")

		for _, table := range []string{"user_emails", userdb.UsersTable} {
			assert.Zero(t, db.Count(t, `SELECT count(*) FROM `+table+` WHERE email_key LIKE '%@%'`), table)
		}
		for _, address := range addresses {
			id := ids[address]
			assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM user_emails WHERE email_key = ? AND user_id = ?`,
				testenv.LookupHash(address), id))
			owner, err := store.Owner(testenv.Context(t), strings.ToUpper(address))
			require.NoError(t, err)
			assert.Equal(t, id, owner)
			found, err := store.ReadModel().UserByEmail(testenv.Context(t), strings.ToUpper(address))
			require.NoError(t, err)
			assert.Equal(t, id, found.ID)
			owner, _, err = store.Credential(testenv.Context(t), address)
			require.NoError(t, err)
			assert.Equal(t, id, owner)
		}
		err = store.Register(testenv.Context(t), newStoreUser(t, uuid.NewString(), "Ada", "ADA@example.COM"), passwordHash(t), nil)
		assert.ErrorIs(t, err, domain.ErrEmailTaken, "still unique in any case")
	})
}
