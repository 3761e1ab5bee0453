package userdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/onboard/onboard/adapters/sqldb"
)

// StartUpgrades runs the data upgrades of a start (rewriting what older
// versions stored) until one finds nothing left to change, records that
// in start_upgrades, and skips it at every start after: each reads whole
// tables, which at a million users takes seconds.
type StartUpgrades struct {
	db      *sql.DB
	queries struct{ done, record, forget string }
}

// UsersCatchUp is the start upgrade that catches the users read model up
// with the event store. A users table made anew, or swapped in by a
// rebuild that MySQL cannot make atomic, forgets it first: until a catch-up
// completes, every start runs it.
const UsersCatchUp = "users-catch-up"

// NewStartUpgrades returns the start upgrades of db.
func NewStartUpgrades(db *sql.DB) StartUpgrades {
	d := sqldb.Of(db)
	u := StartUpgrades{db: db}
	u.queries.done = d.Rebind(`SELECT 1 FROM start_upgrades WHERE name = ?`)
	u.queries.record = d.Rebind(d.InsertOrIgnore(`INSERT INTO start_upgrades (name) VALUES (?)`, "name"))
	u.queries.forget = d.Rebind(`DELETE FROM start_upgrades WHERE name = ?`)
	return u
}

// Run runs the upgrade of this name, unless a start recorded it done, and
// returns how many rows it changed; when none, it records it done. A
// replica of an older version still writing the old form meanwhile keeps
// it unrecorded: the next start changes what that one wrote.
func (u StartUpgrades) Run(ctx context.Context, name string, upgrade func(context.Context) (int, error)) (int, error) {
	var one int
	err := u.db.QueryRowContext(ctx, u.queries.done, name).Scan(&one)
	if err == nil {
		return 0, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("read start upgrade %s: %w", name, err)
	}
	changed, err := upgrade(ctx)
	if err != nil || changed > 0 {
		return changed, err
	}
	if _, err := u.db.ExecContext(ctx, u.queries.record, name); err != nil {
		return 0, fmt.Errorf("record start upgrade %s: %w", name, err)
	}
	return 0, nil
}

// Forget has the upgrade of this name run again at every start until one
// finds nothing left for it.
func (u StartUpgrades) Forget(ctx context.Context, name string) error {
	if _, err := u.db.ExecContext(ctx, u.queries.forget, name); err != nil {
		return fmt.Errorf("forget start upgrade %s: %w", name, err)
	}
	return nil
}
