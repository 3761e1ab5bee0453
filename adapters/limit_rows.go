package adapters

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/domain"
)

// limitRow is one row of a limits table that a request counts on: its
// key, and the statements that count the request on it.
type limitRow struct {
	key string
	// prepare runs before count (an insert of the row if missing, ...).
	prepare []limitStatement
	// count is a conditional UPDATE: it changes the row, or nothing when
	// the row refuses the request.
	count limitStatement
}

type limitStatement struct {
	query string
	args  []any
}

// limitTable is a table of rows keyed by subject, each of which names,
// when it refuses requests, the Unix millisecond until which it does.
type limitTable struct {
	db *sql.DB
	// until reads that time of a row by its key.
	until string
	// what names the counting in errors; refusal is a refused request's
	// message.
	what, refusal string
}

// limitAttempts bounds the tries of a count that the database aborted (a
// deadlock of MySQL's gap locks on new rows, a serialization failure).
const limitAttempts = 3

// countAll counts a request on every row in one transaction, all or none:
// when a row refuses it, nothing is counted and the error is a
// domain.KindTooMany whose wait lasts until the latest of the refusing
// rows'. The rows are taken in key order, so that two requests never wait
// for each other's rows crosswise; a transaction the database aborted is
// tried again.
func (t limitTable) countAll(ctx context.Context, now time.Time, rows []limitRow) error {
	slices.SortFunc(rows, func(a, b limitRow) int { return strings.Compare(a.key, b.key) })
	for attempt := 1; ; attempt++ {
		err := t.countOnce(ctx, now, rows)
		var de *domain.Error
		if err == nil || errors.As(err, &de) || !sqldb.Transient(err) || attempt == limitAttempts || ctx.Err() != nil {
			return err
		}
	}
}

func (t limitTable) countOnce(ctx context.Context, now time.Time, rows []limitRow) error {
	tx, err := t.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: begin: %w", t.what, err)
	}
	defer func() { _ = tx.Rollback() }()
	var refusedUntil int64
	for _, row := range rows {
		for _, s := range row.prepare {
			if _, err := tx.ExecContext(ctx, s.query, s.args...); err != nil {
				return fmt.Errorf("%s: %w", t.what, err)
			}
		}
		res, err := tx.ExecContext(ctx, row.count.query, row.count.args...)
		if err != nil {
			return fmt.Errorf("%s: %w", t.what, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("%s: %w", t.what, err)
		} else if n == 1 {
			continue
		}
		var until int64
		if err := tx.QueryRowContext(ctx, t.until, row.key).Scan(&until); err != nil {
			return fmt.Errorf("%s: read a limit: %w", t.what, err)
		}
		refusedUntil = max(refusedUntil, until)
	}
	if refusedUntil > 0 {
		wait := time.Duration(refusedUntil-now.UnixMilli()) * time.Millisecond
		return domain.TooManyRequests(t.refusal, max(wait, time.Second))
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: commit: %w", t.what, err)
	}
	return nil
}

// subjectKey names a limit's subject in its table: an HMAC under key of
// the purpose and the parts, so that no address, account or email is
// stored.
func subjectKey(key []byte, purpose string, parts ...string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(purpose))
	for _, part := range parts {
		mac.Write([]byte(strconv.Itoa(len(part)) + ":" + part))
	}
	return hex.EncodeToString(mac.Sum(nil))
}
