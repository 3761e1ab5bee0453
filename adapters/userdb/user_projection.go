package userdb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/domain"
)

// projectionBatch is how many streams a catch-up or rebuild step reads.
const projectionBatch = 500

// Prepare creates the users table if it is missing and projects every
// stream the table is behind on: on the first start after an upgrade, all
// of them; after that, none, as each write updates its row.
func (m *UserReadModel) Prepare(ctx context.Context) (int, error) {
	if err := m.PrepareTable(ctx); err != nil {
		return 0, err
	}
	return m.CatchUp(ctx)
}

// PrepareTable creates the users table, or adds what an older
// version's table lacks. A table made anew forgets the start upgrade
// UsersCatchUp first, so that every start catches it up until one
// completes, whichever replica made it.
func (m *UserReadModel) PrepareTable(ctx context.Context) error {
	exists, err := m.tableExists(ctx, m.db, UsersTable)
	if err != nil {
		return err
	}
	if exists {
		return m.addErasedColumn(ctx)
	}
	if err := NewStartUpgrades(m.db).Forget(ctx, UsersCatchUp); err != nil {
		return err
	}
	return m.createTable(ctx, m.db, UsersTable)
}

// CatchUp projects every stream the users table is behind on, and
// returns how many: it reads every event, so a start runs it once
// (service's start upgrades), as each write updates its row after that.
func (m *UserReadModel) CatchUp(ctx context.Context) (int, error) {
	return m.catchUp(ctx, m.db, UsersTable)
}

// addErasedColumn adds the erased column to a users table made before
// erasure; of replicas starting at once, one adds it and the others find
// it there.
func (m *UserReadModel) addErasedColumn(ctx context.Context) error {
	hasColumn := func() bool { // the query reads no row, unless the column is missing
		var erased bool
		return errors.Is(m.db.QueryRowContext(ctx, "SELECT erased FROM "+UsersTable+" WHERE 1 = 0").Scan(&erased), sql.ErrNoRows)
	}
	if hasColumn() {
		return nil
	}
	_, err := m.db.ExecContext(ctx, fmt.Sprintf("ALTER TABLE %s ADD COLUMN erased %s NOT NULL DEFAULT FALSE",
		UsersTable, m.dialect.Types().Bool))
	if err != nil && !hasColumn() {
		return fmt.Errorf("add the erased column to %s: %w", UsersTable, err)
	}
	return nil
}

// catchUp projects into table every stream with events past its row's
// version. It compares versions per stream, not global positions, so an
// event that committed after a later position was read is not skipped.
func (m *UserReadModel) catchUp(ctx context.Context, db execer, table string) (int, error) {
	total := 0
	var last []string
	for {
		ids, err := m.streamsBehind(ctx, db, table)
		if err != nil || len(ids) == 0 {
			return total, err
		}
		if slices.Equal(ids, last) {
			return total, fmt.Errorf("project into %s: stream %s does not advance", table, ids[0])
		}
		if _, err := m.project(ctx, db, table, ids); err != nil {
			return total, err
		}
		total += len(ids)
		last = ids
	}
}

// streamsBehind lists up to projectionBatch streams with events past
// their row in table, or with no row.
func (m *UserReadModel) streamsBehind(ctx context.Context, db execer, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, m.dialect.Rebind(fmt.Sprintf(`SELECT e.stream_id FROM events e
		LEFT JOIN %s u ON u.user_id = e.stream_id
		WHERE e.stream_version > COALESCE(u.version, 0)
		GROUP BY e.stream_id ORDER BY e.stream_id LIMIT ?`, table)), projectionBatch)
	if err != nil {
		return nil, fmt.Errorf("find streams behind %s: %w", table, err)
	}
	return scanStrings(rows)
}

// project folds the streams into users and writes their rows into table,
// returning the number of events read.
func (m *UserReadModel) project(ctx context.Context, db execer, table string, ids []string) (int, error) {
	streams, n, err := m.events.LoadStreams(ctx, db, ids)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		user, err := domain.UnmarshalUserFromEvents(streams[id])
		if err != nil {
			return 0, fmt.Errorf("stream %s: %w", id, err)
		}
		if err := m.write(ctx, db, table, user); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// RebuildProgress is how far a rebuild has come.
type RebuildProgress struct {
	// Position is the global position of the newest stream start read;
	// Head the newest event's when the rebuild began.
	Position, Head int64
	Users, Events  int
	Elapsed        time.Duration
}

// EventsPerSecond is the replay's rate so far.
func (p RebuildProgress) EventsPerSecond() float64 {
	if p.Elapsed <= 0 {
		return 0
	}
	return float64(p.Events) / p.Elapsed.Seconds()
}

// Remaining estimates the time left from the positions still to read.
func (p RebuildProgress) Remaining() time.Duration {
	if p.Position <= 0 || p.Head <= p.Position {
		return 0
	}
	return time.Duration(float64(p.Elapsed) * float64(p.Head-p.Position) / float64(p.Position))
}

// Rebuild replays the event store into a new users table and swaps it in,
// while the service keeps serving and writing: writes to the old table
// during the replay are caught up from the events, per stream, before and
// in the swap. On PostgreSQL and SQLite the swap and its last catch-up are
// one transaction; MySQL renames both tables in one statement and catches
// up right after. report is called after each batch. One rebuild runs at
// a time: another one meanwhile gets ErrRebuildRunning.
func (m *UserReadModel) Rebuild(ctx context.Context, report func(RebuildProgress)) (RebuildProgress, error) {
	start := time.Now()
	lock := newRebuildLock(m.db, m.dialect, UsersTable)
	if err := lock.acquire(ctx); err != nil {
		return RebuildProgress{}, err
	}
	defer lock.release(ctx)
	next, old := UsersTable+"_rebuild", UsersTable+"_old"
	for _, table := range []string{next, old} {
		if _, err := m.db.ExecContext(ctx, "DROP TABLE IF EXISTS "+table); err != nil {
			return RebuildProgress{}, fmt.Errorf("drop %s: %w", table, err)
		}
	}
	if err := m.createTable(ctx, m.db, next); err != nil {
		return RebuildProgress{}, err
	}
	var p RebuildProgress
	if err := m.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(global_position), 0) FROM events`).Scan(&p.Head); err != nil {
		return p, fmt.Errorf("read the head: %w", err)
	}
	for {
		ids, position, err := m.streamStarts(ctx, p.Position)
		if err != nil || len(ids) == 0 {
			if err != nil {
				return p, err
			}
			break
		}
		n, err := m.project(ctx, m.db, next, ids)
		if err != nil {
			return p, err
		}
		p.Position, p.Users, p.Events, p.Elapsed = position, p.Users+len(ids), p.Events+n, time.Since(start)
		report(p)
		if err := lock.renew(ctx); err != nil {
			return p, err
		}
	}
	if err := lock.renew(ctx); err != nil {
		return p, err
	}
	if _, err := m.catchUp(ctx, m.db, next); err != nil {
		return p, err
	}
	if err := m.swap(ctx, next, old); err != nil {
		return p, err
	}
	if _, err := m.db.ExecContext(ctx, "DROP TABLE "+old); err != nil {
		return p, fmt.Errorf("drop %s: %w", old, err)
	}
	if err := m.db.QueryRowContext(ctx, "SELECT count(*) FROM "+UsersTable).Scan(&p.Users); err != nil {
		return p, fmt.Errorf("count users: %w", err)
	}
	p.Elapsed = time.Since(start)
	return p, nil
}

// streamStarts lists the streams whose first event comes after position,
// in the order of those events, with the last one's position.
func (m *UserReadModel) streamStarts(ctx context.Context, after int64) ([]string, int64, error) {
	rows, err := m.db.QueryContext(ctx, m.dialect.Rebind(`SELECT stream_id, global_position FROM events
		WHERE stream_version = 1 AND global_position > ? ORDER BY global_position LIMIT ?`), after, projectionBatch)
	if err != nil {
		return nil, 0, fmt.Errorf("read streams: %w", err)
	}
	defer func() { _ = rows.Close() }()
	var (
		ids  []string
		last int64
	)
	for rows.Next() {
		var id string
		if err := rows.Scan(&id, &last); err != nil {
			return nil, 0, fmt.Errorf("read streams: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, last, rows.Err()
}

// swap renames the users table to old and next to users, then catches the
// new table up with what was written to the old one meanwhile.
func (m *UserReadModel) swap(ctx context.Context, next, old string) error {
	renames := m.dialect.RenameTables([]string{UsersTable, next}, []string{old, UsersTable})
	if !m.dialect.TransactionalDDL() {
		// A crash between the renames and the catch-up leaves the start's
		// catch-up to finish it.
		if err := NewStartUpgrades(m.db).Forget(ctx, UsersCatchUp); err != nil {
			return err
		}
		for _, statement := range renames {
			if _, err := m.db.ExecContext(ctx, statement); err != nil {
				return fmt.Errorf("swap tables: %w", err)
			}
		}
		_, err := m.catchUp(ctx, m.db, UsersTable)
		return err
	}
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, statement := range renames {
		if _, err := tx.ExecContext(ctx, statement); err != nil {
			return fmt.Errorf("swap tables: %w", err)
		}
	}
	if _, err := m.catchUp(ctx, tx, UsersTable); err != nil {
		return err
	}
	return commit(tx)
}

// ProjectionStatus is how far a projection is behind the event store.
type ProjectionStatus struct {
	Name string
	// Checkpoint is the global position of the newest event projected.
	Checkpoint int64
	// Head is the newest event's global position.
	Head int64
	// LagEvents counts the events not projected yet, and LagSeconds is
	// the age of the oldest.
	LagEvents  int
	LagSeconds float64
}

// Status reads the users projection's checkpoint and lag.
func (m *UserReadModel) Status(ctx context.Context) (ProjectionStatus, error) {
	s := ProjectionStatus{Name: UsersTable}
	err := m.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(last_position), 0) FROM `+UsersTable).Scan(&s.Checkpoint)
	if err == nil {
		err = m.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(global_position), 0) FROM events`).Scan(&s.Head)
	}
	var oldest any
	if err == nil {
		err = m.db.QueryRowContext(ctx, `SELECT count(*), MIN(e.recorded_at) FROM events e
			LEFT JOIN `+UsersTable+` u ON u.user_id = e.stream_id
			WHERE e.stream_version > COALESCE(u.version, 0)`).Scan(&s.LagEvents, &oldest)
	}
	if err != nil {
		return s, fmt.Errorf("read the users projection's status: %w", err)
	}
	if at, ok := sqldb.AsTime(oldest); ok && s.LagEvents > 0 {
		s.LagSeconds = time.Since(at).Seconds()
	}
	return s, nil
}

// scanStrings reads a one-column result.
func scanStrings(rows *sql.Rows) ([]string, error) {
	defer func() { _ = rows.Close() }()
	var values []string
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		values = append(values, v)
	}
	return values, rows.Err()
}

// SealPlainRows, run at start after Prepare, encrypts the name and email
// of every row of the users read model that older versions wrote in the
// clear, under the user's key (made first for a user registered before
// keys), and returns how many rows it changed. Each update names the plain
// values it replaces, so that replicas starting at once change a row at
// most once, and a second run changes nothing.
func (m *UserReadModel) SealPlainRows(ctx context.Context) (int, error) {
	find := m.dialect.Rebind(`SELECT user_id FROM ` + UsersTable + ` WHERE (name NOT LIKE '` + secrets.SealedPrefix +
		`%' OR email NOT LIKE '` + secrets.SealedPrefix + `%') AND NOT erased ORDER BY user_id LIMIT ?`)
	total := 0
	var last []string
	for {
		rows, err := m.db.QueryContext(ctx, find, projectionBatch)
		if err != nil {
			return total, fmt.Errorf("find plain rows of %s: %w", UsersTable, err)
		}
		ids, err := scanStrings(rows)
		if err != nil || len(ids) == 0 {
			return total, err
		}
		if slices.Equal(ids, last) {
			return total, fmt.Errorf("encrypt the rows of %s: user %s does not change", UsersTable, ids[0])
		}
		last = ids
		n, err := m.sealRows(ctx, ids)
		total += n
		if err != nil {
			return total, err
		}
	}
}

// sealRows encrypts the plain fields of the users' rows in one transaction.
func (m *UserReadModel) sealRows(ctx context.Context, ids []string) (int, error) {
	read := m.dialect.Rebind(`SELECT name, email FROM ` + UsersTable + ` WHERE user_id = ?`)
	update := m.dialect.Rebind(`UPDATE ` + UsersTable + ` SET name = ?, email = ? WHERE user_id = ? AND name = ? AND email = ?`)
	tx, err := m.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	total := 0
	for _, id := range ids {
		var name, email string
		if err := tx.QueryRowContext(ctx, read, id).Scan(&name, &email); err != nil {
			return 0, fmt.Errorf("read the row of user %s: %w", id, err)
		}
		key, err := m.keys.keyOrCreate(ctx, tx, id)
		if err != nil {
			return 0, err
		}
		sealedName, sealedEmail := name, email
		if !secrets.IsSealed(name) {
			if sealedName, err = sealField(key, id, "name", name); err != nil {
				return 0, err
			}
		}
		if !secrets.IsSealed(email) {
			if sealedEmail, err = sealField(key, id, "email", email); err != nil {
				return 0, err
			}
		}
		res, err := tx.ExecContext(ctx, update, sealedName, sealedEmail, id, name, email)
		if err != nil {
			return 0, fmt.Errorf("encrypt the row of user %s: %w", id, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		total += int(n)
	}
	return total, commit(tx)
}
