package service

import (
	"log/slog"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

func TestUpgradeStoredData_RecordsItsStepsAndCatchesUpAUsersTableMadeAnew(t *testing.T) {
	t.Parallel()
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		ctx := testenv.Context(t)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		logs := &testenv.LockedBuffer{}
		logger := slog.New(slog.NewJSONHandler(logs, nil))
		require.NoError(t, UpgradeStoredData(ctx, db.DB, store, logger))
		assert.Equal(t, 4, db.Count(t, `SELECT count(*) FROM start_upgrades`), "an empty database has nothing to upgrade")

		id := uuid.NewString()
		require.NoError(t, store.SeedUsers(ctx, []domain.UserRegistered{
			{UserID: id, Name: "Ada Lovelace", Email: "ada@example.com", Locale: "en", RegisteredAt: time.Now()},
		}, []byte("hash")))
		_, err := db.ExecContext(ctx, `DROP TABLE users`)
		require.NoError(t, err)

		require.NoError(t, UpgradeStoredData(ctx, db.DB, store, logger))
		row, err := store.ReadModel().UserByID(ctx, id)
		require.NoError(t, err, "the users table made anew holds the user")
		assert.Equal(t, "ada@example.com", row.Email)
		assert.Contains(t, logs.String(), `"msg":"caught the users read model up with the event store","users":1`)
	})
}
