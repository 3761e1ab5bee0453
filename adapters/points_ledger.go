package adapters

import (
	"context"
	"database/sql"
	"fmt"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/domain"

	"github.com/onboard/onboard/adapters/sqldb"
)

// PointsLedger is the points read model: one row per user and reason.
type PointsLedger struct {
	db                       *sql.DB
	grantQuery, entriesQuery string
	// onGrant is told of each entry written, by its reason; nil: none.
	onGrant func(reason string)
}

// NewPointsLedger returns the ledger.
func NewPointsLedger(db *sql.DB) PointsLedger {
	d := sqldb.Of(db)
	return PointsLedger{
		db: db,
		grantQuery: d.Rebind(d.InsertOrIgnore(
			`INSERT INTO points_entries (user_id, reason, amount, granted_at) VALUES (?, ?, ?, ?)`, "amount")),
		entriesQuery: d.Rebind(`SELECT amount, reason, granted_at FROM points_entries
			WHERE user_id = ? ORDER BY granted_at, reason`),
	}
}

// OnGrant returns the ledger telling count of each entry it writes, by its
// reason; a redelivered grant writes nothing and is not told.
func (l PointsLedger) OnGrant(count func(reason string)) PointsLedger {
	l.onGrant = count
	return l
}

// Grant adds the entry unless the user already has one with its reason.
// On the sql transport, whose subscriber hands the message over inside
// the transaction that acks it (watermill-sql's TxFromContext), the entry
// is written in that transaction: the grant and the ack commit together,
// one commit for both, and a grant whose ack did not commit is not kept.
// On PostgreSQL the grant goes with the COMMIT, and is told to onGrant
// once committed.
func (l PointsLedger) Grant(ctx context.Context, userID string, entry domain.PointsEntry) error {
	args := []any{userID, entry.Reason, entry.Amount, entry.GrantedAt.UTC()}
	var (
		res interface{ RowsAffected() (int64, error) }
		err error
	)
	if tx, ok := wsql.TxFromContext(ctx); ok {
		if later, ok := tx.(execAtCommit); ok {
			return later.ExecAtCommit(l.grantQuery, args, func(n int64) { l.granted(entry, n) })
		}
		if res, err = tx.ExecContext(ctx, l.grantQuery, args...); err != nil {
			// The transaction may be aborted now (PostgreSQL refuses every
			// statement after an error): the message must come again in a
			// new one, not be poisoned by the errors that follow.
			return grantInAckError{err}
		}
	} else if res, err = l.db.ExecContext(ctx, l.grantQuery, args...); err != nil {
		return fmt.Errorf("grant points: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil {
		l.granted(entry, n)
	}
	return nil
}

// execAtCommit is a message's transaction that sends a write with its
// COMMIT (watermillsql's, on PostgreSQL): the grant then costs no round
// trip of its own, and is told once it committed.
type execAtCommit interface {
	ExecAtCommit(query string, args []any, committed func(rowsAffected int64)) error
}

// granted tells onGrant of an entry written (n, its statement's row
// count, is 1; 0 when the user had it already).
func (l PointsLedger) granted(entry domain.PointsEntry, n int64) {
	if n == 1 && l.onGrant != nil {
		l.onGrant(entry.Reason)
	}
}

// grantInAckError is a grant that failed in its message's transaction: an
// outage, so that the message is rolled back and delivered again.
type grantInAckError struct{ err error }

func (e grantInAckError) Error() string        { return "grant points: " + e.err.Error() }
func (e grantInAckError) Unwrap() error        { return e.err }
func (e grantInAckError) Failure() app.Failure { return app.FailureOutage }

// Entries lists the user's entries, oldest first.
func (l PointsLedger) Entries(ctx context.Context, userID string) ([]domain.PointsEntry, error) {
	rows, err := l.db.QueryContext(ctx, l.entriesQuery, userID)
	if err != nil {
		return nil, fmt.Errorf("read points: %w", err)
	}
	defer func() { _ = rows.Close() }()
	entries := []domain.PointsEntry{}
	for rows.Next() {
		var e domain.PointsEntry
		if err := rows.Scan(&e.Amount, &e.Reason, &e.GrantedAt); err != nil {
			return nil, fmt.Errorf("read points: %w", err)
		}
		e.GrantedAt = e.GrantedAt.UTC()
		entries = append(entries, e)
	}
	return entries, rows.Err()
}
