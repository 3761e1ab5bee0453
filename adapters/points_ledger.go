package adapters

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/onboard/onboard/domain"

	"github.com/onboard/onboard/adapters/sqldb"
)

// PointsLedger is the points read model: one row per user and reason.
type PointsLedger struct {
	db                       *sql.DB
	grantQuery, entriesQuery string
	grants                   *prometheus.CounterVec // nil: not counted (WithMetrics)
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

// Grant adds the entry unless the user already has one with its reason.
func (l PointsLedger) Grant(ctx context.Context, userID string, entry domain.PointsEntry) error {
	res, err := l.db.ExecContext(ctx, l.grantQuery, userID, entry.Reason, entry.Amount, entry.GrantedAt.UTC())
	if err != nil {
		return fmt.Errorf("grant points: %w", err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		l.countGrant(entry.Reason)
	}
	return nil
}

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
