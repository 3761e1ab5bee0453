package secrets_test

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/internal/testenv"
)

// The first start makes the value at random; every later call, from this
// process or another replica, reads the same one.
func TestServerValue_MadeOnceSharedByEveryone(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		ctx := testenv.Context(t)

		const replicas = 4
		values := make([][]byte, replicas)
		var wg sync.WaitGroup
		for i := range values {
			wg.Go(func() {
				var err error
				values[i], err = secrets.ServerValue(ctx, db.DB, "deployment-id")
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		require.Len(t, values[0], 32)
		for _, s := range values[1:] {
			assert.Equal(t, values[0], s, "every replica reads the same value")
		}
		again, err := secrets.ServerValue(ctx, db.DB, "deployment-id")
		require.NoError(t, err)
		assert.Equal(t, values[0], again, "a restart reads the stored value")
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM server_secrets`))

		other, err := secrets.ServerValue(ctx, db.DB, "another purpose")
		require.NoError(t, err)
		assert.NotEqual(t, values[0], other, "one value per purpose")

		fresh := testenv.MigratedDB(t, backend)
		elsewhere, err := secrets.ServerValue(ctx, fresh.DB, "deployment-id")
		require.NoError(t, err)
		assert.NotEqual(t, values[0], elsewhere, "made at random")
	})
}
