package adapters

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
)

// PasswordFailures counts a user's failed password checks in a window, in
// the database, so that every replica counts the same guesses.
type PasswordFailures struct {
	db      *sql.DB
	window  time.Duration
	queries struct{ read, start, add, reset string }
}

// NewPasswordFailures counts failures over window.
func NewPasswordFailures(db *sql.DB, window time.Duration) *PasswordFailures {
	d := sqldb.Of(db)
	f := &PasswordFailures{db: db, window: window}
	f.queries.read = d.Rebind(`SELECT failures, first_failed_at FROM password_failures WHERE user_id = ?`)
	f.queries.start = d.Rebind(d.InsertOrIgnore(
		`INSERT INTO password_failures (user_id, failures, first_failed_at) VALUES (?, 0, ?)`, "failures"))
	f.queries.add = d.Rebind(`UPDATE password_failures SET
		failures = CASE WHEN first_failed_at < ? THEN 1 ELSE failures + 1 END,
		first_failed_at = CASE WHEN first_failed_at < ? THEN ? ELSE first_failed_at END
		WHERE user_id = ?`)
	f.queries.reset = d.Rebind(`DELETE FROM password_failures WHERE user_id = ?`)
	return f
}

// Recent returns the user's failures in the current window and when the
// window ends.
func (f *PasswordFailures) Recent(ctx context.Context, userID string) (int, time.Time, error) {
	var (
		n     int
		first time.Time
	)
	err := f.db.QueryRowContext(ctx, f.queries.read, userID).Scan(&n, &first)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("read password failures: %w", err)
	}
	ends := first.Add(f.window)
	if !time.Now().Before(ends) {
		return 0, time.Time{}, nil
	}
	return n, ends, nil
}

// Add counts one failure, starting a new window if the last one ended.
func (f *PasswordFailures) Add(ctx context.Context, userID string) error {
	now := time.Now().UTC()
	if _, err := f.db.ExecContext(ctx, f.queries.start, userID, now); err != nil {
		return fmt.Errorf("count a password failure: %w", err)
	}
	windowStart := now.Add(-f.window)
	if _, err := f.db.ExecContext(ctx, f.queries.add, windowStart, windowStart, now, userID); err != nil {
		return fmt.Errorf("count a password failure: %w", err)
	}
	return nil
}

// Reset forgets the user's failures, after a right password.
func (f *PasswordFailures) Reset(ctx context.Context, userID string) error {
	if _, err := f.db.ExecContext(ctx, f.queries.reset, userID); err != nil {
		return fmt.Errorf("reset password failures: %w", err)
	}
	return nil
}
