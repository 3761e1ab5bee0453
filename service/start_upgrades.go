package service

import (
	"context"
	"database/sql"
	"log/slog"

	"github.com/onboard/onboard/adapters/userdb"
)

// UpgradeStoredData, run at start, prepares the users read model and rewrites what older
// versions stored: it catches the read model up with the event store,
// hashes the addresses kept as lookup keys and encrypts the names and
// addresses kept in the clear. Each step reads whole tables, so each runs
// until a start finds nothing left for it (userdb.StartUpgrades); a
// users table made anew is caught up until a catch-up completes.
func UpgradeStoredData(ctx context.Context, db *sql.DB, users *userdb.UserStore, logger *slog.Logger) error {
	upgrades := userdb.NewStartUpgrades(db)
	readModel := users.ReadModel()
	if err := readModel.PrepareTable(ctx); err != nil {
		return err
	}
	steps := []struct {
		name, done, counted string
		run                 func(context.Context) (int, error)
	}{
		{userdb.UsersCatchUp, "caught the users read model up with the event store", "users", readModel.CatchUp},
		{"hash-email-keys", "replaced the addresses kept as lookup keys by their hashes", "rows", users.HashPlainEmailKeys},
		{"seal-user-rows", "encrypted the names and addresses older versions kept in the clear", "rows", readModel.SealPlainRows},
		{"seal-events", "encrypted the names and addresses older versions kept in the clear in events", "events",
			users.SealPlainEvents},
	}
	for _, step := range steps {
		changed, err := upgrades.Run(ctx, step.name, step.run)
		if err != nil {
			return err
		}
		if changed > 0 {
			logger.Info(step.done, step.counted, changed)
		}
	}
	return nil
}
