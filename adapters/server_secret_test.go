package adapters_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters"
	"github.com/onboard/onboard/internal/testenv"
)

// The first start makes the secret at random; every later call, from this
// process or another replica, reads the same one.
func TestServerSecret_MadeOnceSharedByEveryone(t *testing.T) {
	forEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := migratedDB(t, backend)
		ctx := testTimeoutCtx(t)

		const replicas = 4
		secrets := make([][]byte, replicas)
		var wg sync.WaitGroup
		for i := range secrets {
			wg.Go(func() {
				var err error
				secrets[i], err = adapters.ServerSecret(ctx, db.DB, adapters.IdempotencyKeySecret)
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		require.Len(t, secrets[0], 32)
		for _, s := range secrets[1:] {
			assert.Equal(t, secrets[0], s, "every replica reads the same secret")
		}
		again, err := adapters.ServerSecret(ctx, db.DB, adapters.IdempotencyKeySecret)
		require.NoError(t, err)
		assert.Equal(t, secrets[0], again, "a restart reads the stored secret")
		assert.Equal(t, 1, countSecrets(t, db))

		other, err := adapters.ServerSecret(ctx, db.DB, "another purpose")
		require.NoError(t, err)
		assert.NotEqual(t, secrets[0], other, "one secret per purpose")

		fresh := migratedDB(t, backend)
		elsewhere, err := adapters.ServerSecret(ctx, fresh.DB, adapters.IdempotencyKeySecret)
		require.NoError(t, err)
		assert.NotEqual(t, secrets[0], elsewhere, "made at random")
	})
}

func countSecrets(t *testing.T, db *testenv.DB) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM server_secrets`).Scan(&n))
	return n
}
