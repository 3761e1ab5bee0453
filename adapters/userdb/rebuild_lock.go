package userdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/onboard/onboard/adapters/sqldb"
)

// RebuildLease is how long a rebuild's lock holds unless renewed. A
// rebuild renews it after each batch; one whose process died frees it
// within this long.
const RebuildLease = time.Minute

// ErrRebuildRunning: another rebuild of the projection holds its lock.
var ErrRebuildRunning = errors.New("another rebuild of this projection is running")

// rebuildLock is one rebuild's hold on a projection's row of
// projection_locks: two rebuilds at once would build into the same table
// and drop each other's work.
type rebuildLock struct {
	db      *sql.DB
	name    string
	holder  string
	queries struct{ take, takeOver, renew, holder, release string }
}

func newRebuildLock(db *sql.DB, d sqldb.Dialect, name string) *rebuildLock {
	l := &rebuildLock{db: db, name: name, holder: uuid.NewString()}
	l.queries.take = d.Rebind(d.InsertOrIgnore(
		`INSERT INTO projection_locks (name, holder, held_until_ms) VALUES (?, ?, ?)`, "name"))
	l.queries.takeOver = d.Rebind(`UPDATE projection_locks SET holder = ?, held_until_ms = ?
		WHERE name = ? AND held_until_ms < ?`)
	l.queries.renew = d.Rebind(`UPDATE projection_locks SET held_until_ms = ? WHERE name = ? AND holder = ?`)
	l.queries.holder = d.Rebind(`SELECT holder, held_until_ms FROM projection_locks WHERE name = ?`)
	l.queries.release = d.Rebind(`DELETE FROM projection_locks WHERE name = ? AND holder = ?`)
	return l
}

// acquire takes the lock: a free row, or one whose lease ran out.
func (l *rebuildLock) acquire(ctx context.Context) error {
	now := time.Now()
	until := now.Add(RebuildLease).UnixMilli()
	res, err := l.db.ExecContext(ctx, l.queries.take, l.name, l.holder, until)
	if err == nil {
		if n, rowsErr := res.RowsAffected(); rowsErr != nil || n == 1 {
			return rowsErr
		}
		_, err = l.db.ExecContext(ctx, l.queries.takeOver, l.holder, until, l.name, now.UnixMilli())
	}
	if err != nil {
		return fmt.Errorf("lock the rebuild of %s: %w", l.name, err)
	}
	holder, heldUntil, err := l.read(ctx)
	if err != nil || holder == l.holder {
		return err
	}
	return fmt.Errorf("%w: its lock holds until %s unless that rebuild renews it; one that stopped frees it by then",
		ErrRebuildRunning, time.UnixMilli(heldUntil).UTC().Format(time.RFC3339))
}

// renew extends the lease; it fails if another rebuild took the lock over
// (this one was not heard from for a whole lease).
func (l *rebuildLock) renew(ctx context.Context) error {
	if _, err := l.db.ExecContext(ctx, l.queries.renew, time.Now().Add(RebuildLease).UnixMilli(), l.name, l.holder); err != nil {
		return fmt.Errorf("renew the rebuild's lock: %w", err)
	}
	holder, _, err := l.read(ctx)
	if err == nil && holder != l.holder {
		err = fmt.Errorf("the rebuild of %s lost its lock: not renewed for %s, another rebuild took it", l.name, RebuildLease)
	}
	return err
}

func (l *rebuildLock) read(ctx context.Context) (holder string, heldUntilMs int64, err error) {
	err = l.db.QueryRowContext(ctx, l.queries.holder, l.name).Scan(&holder, &heldUntilMs)
	if errors.Is(err, sql.ErrNoRows) {
		return "", 0, nil
	}
	if err != nil {
		return "", 0, fmt.Errorf("read the rebuild's lock: %w", err)
	}
	return holder, heldUntilMs, nil
}

// release frees the lock, even when ctx has ended; a release that fails
// leaves it to its lease.
func (l *rebuildLock) release(ctx context.Context) {
	_, _ = l.db.ExecContext(context.WithoutCancel(ctx), l.queries.release, l.name, l.holder)
}
