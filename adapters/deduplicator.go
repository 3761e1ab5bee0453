package adapters

import (
	"context"
	"database/sql"
	"fmt"
)

// Deduplicator records "handler did key" in processed_messages, in a
// transaction held open while the effect runs: the record commits only when
// the effect succeeded, and a concurrent run of the same key blocks on the
// row until the first one ends, then sees it and does nothing.
type Deduplicator struct {
	db          *sql.DB
	recordQuery string
}

// NewDeduplicator returns the deduplicator.
func NewDeduplicator(db *sql.DB) Deduplicator {
	d := dialectOf(db)
	return Deduplicator{db: db, recordQuery: d.rebind(d.insertOrIgnore(
		`INSERT INTO processed_messages (handler, message_key) VALUES (?, ?)`, "handler"))}
}

// Once runs effect unless handler already did key.
func (d Deduplicator) Once(ctx context.Context, handler, key string, effect func(ctx context.Context) error) error {
	tx, err := d.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	res, err := tx.ExecContext(ctx, d.recordQuery, handler, key)
	if err != nil {
		return fmt.Errorf("record processed message: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return err // already done
	}
	if err := effect(ctx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit processed message: %w", err)
	}
	return nil
}
