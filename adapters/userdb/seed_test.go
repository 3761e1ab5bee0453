package userdb_test

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/userdb"
	"github.com/onboard/onboard/domain"
	"github.com/onboard/onboard/internal/testenv"
)

func TestUserStore_SeedUsersWritesWhatRegisterWrites(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		ctx := testenv.Context(t)
		store := testenv.NewUserStore(t, db.DB, slog.New(slog.DiscardHandler))
		_, err := store.ReadModel().Prepare(ctx)
		require.NoError(t, err)
		registrations := []domain.UserRegistered{
			{UserID: uuid.NewString(), Name: "Ada Seed", Email: "ada.seed@example.com", Locale: "en", RegisteredAt: storeTestNow},
			{UserID: uuid.NewString(), Name: "Émile Seed", Email: "Emile.Seed@example.com", Locale: "fr", RegisteredAt: storeTestNow},
		}
		require.NoError(t, store.SeedUsers(ctx, registrations, []byte("a-bcrypt-hash")))

		for _, r := range registrations {
			user, err := store.LoadUser(ctx, r.UserID)
			require.NoError(t, err)
			assert.Equal(t, r.Name, user.Name())
			assert.Equal(t, r.Email, user.Email().String())
			assert.Equal(t, 1, user.Version())

			row, err := store.ReadModel().UserByID(ctx, r.UserID)
			require.NoError(t, err)
			assert.Equal(t, r.Name, row.Name)
			assert.Equal(t, r.Email, row.Email)
			assert.Equal(t, r.Locale, row.Locale)

			owner, hash, err := store.Credential(ctx, r.Email)
			require.NoError(t, err)
			assert.Equal(t, r.UserID, owner)
			assert.Equal(t, "a-bcrypt-hash", string(hash))
		}
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM users u WHERE last_position <>
			(SELECT max(global_position) FROM events e WHERE e.stream_id = u.user_id)`), "every row's checkpoint")
		assert.Zero(t, db.Count(t, `SELECT count(*) FROM users WHERE name LIKE '%Seed%' OR email LIKE '%@%'`),
			"no name or address in the clear")
		projected, err := store.ReadModel().Prepare(ctx)
		require.NoError(t, err)
		assert.Zero(t, projected, "the read model is not behind the seeded events")
	})
}

func TestStartUpgrades_SkipAnUpgradeOnceItChangedNothing(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		ctx := testenv.Context(t)
		upgrades := userdb.NewStartUpgrades(db.DB)
		left := 3
		runs := 0
		upgrade := func(context.Context) (int, error) {
			runs++
			changed := left
			left = 0
			return changed, nil
		}
		changed, err := upgrades.Run(ctx, "tidy", upgrade)
		require.NoError(t, err)
		assert.Equal(t, 3, changed)
		changed, err = upgrades.Run(ctx, "tidy", upgrade)
		require.NoError(t, err)
		assert.Zero(t, changed)
		assert.Equal(t, 2, runs, "a start that changed rows does not record the upgrade done")

		changed, err = upgrades.Run(ctx, "tidy", upgrade)
		require.NoError(t, err)
		assert.Zero(t, changed)
		assert.Equal(t, 2, runs, "recorded done: skipped")

		require.NoError(t, upgrades.Forget(ctx, "tidy"))
		changed, err = upgrades.Run(ctx, "tidy", upgrade)
		require.NoError(t, err)
		assert.Zero(t, changed)
		assert.Equal(t, 3, runs, "forgotten: run again")

		failing := errors.New("the database went away")
		_, err = upgrades.Run(ctx, "other", func(context.Context) (int, error) { return 0, failing })
		require.ErrorIs(t, err, failing)
		assert.Equal(t, 1, db.Count(t, `SELECT count(*) FROM start_upgrades`), "a failed upgrade is not recorded")
	})
}
