package secrets

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/onboard/onboard/adapters/sqldb"
)

// DefaultRotationBatch is how many keys a transaction of a rotation
// re-wraps.
const DefaultRotationBatch = 500

// MasterKeyRotationConfig configures RotateMasterKey.
type MasterKeyRotationConfig struct {
	DB *sql.DB
	// MasterKeys: the current key wraps, the key each row names unwraps.
	MasterKeys *MasterKeys
	// BatchSize is how many keys a transaction re-wraps; zero:
	// DefaultRotationBatch.
	BatchSize int
	// Progress, when set, is told after each batch.
	Progress func(RotationProgress)
}

func (c *MasterKeyRotationConfig) setDefaults() {
	if c.BatchSize == 0 {
		c.BatchSize = DefaultRotationBatch
	}
}

// Validate returns every problem of the configuration at once.
func (c MasterKeyRotationConfig) Validate() error {
	var errs []error
	if c.DB == nil {
		errs = append(errs, errors.New("master key rotation: a database is required"))
	}
	if c.MasterKeys == nil {
		errs = append(errs, errors.New("master key rotation: master keys are required"))
	}
	if c.BatchSize < 0 {
		errs = append(errs, errors.New("master key rotation: the batch size cannot be negative"))
	}
	return errors.Join(errs...)
}

// RotationProgress is how far a rotation is, after a batch.
type RotationProgress struct {
	// Table is the batch's: server_keys or user_keys.
	Table string
	// Done keys of Total are under the current key: Total is how many
	// were under older keys when the rotation started.
	Done, Total int
	Elapsed     time.Duration
}

// Rotation is what a rotation did.
type Rotation struct {
	// Current is the id of the key every key is wrapped under now.
	Current string
	// From are the ids, in MasterKeys, of the master keys the keys were
	// wrapped under.
	From []string
	// ServerKeys and UserKeys count the keys this run re-wrapped.
	ServerKeys, UserKeys int
	// Raced counts the keys another run re-wrapped, or an erasure
	// deleted, between this run's read and its write: left to them.
	Raced int
	// Unopened names the keys that did not open under the master key
	// their row names: altered, each its user's Corrupt data. They are
	// left as they are, and the rotation goes on.
	Unopened []string
	Elapsed  time.Duration
}

// ErrRotationIncomplete is a rotation that found, at its end, keys still
// wrapped under an older master key: keys that do not open (Unopened),
// or keys written meanwhile by a process whose current key is another.
var ErrRotationIncomplete = errors.New("keys are still wrapped under an older master key")

// maxUnopenedNamed bounds the keys an error names.
const maxUnopenedNamed = 10

// wrappedKeys is a table of keys wrapped under master keys.
type wrappedKeys struct {
	table, keyColumn string
	// secretName is the name a row's key is wrapped under (wrapAAD).
	secretName func(key string) string
	// stamp is the column that tells when a row was last wrapped, if any.
	stamp string
}

var rotatedTables = []wrappedKeys{
	{table: "server_keys", keyColumn: "name", secretName: func(name string) string { return name }, stamp: "wrapped_at"},
	{table: "user_keys", keyColumn: "user_id", secretName: UserKeyName},
}

// RotateMasterKey re-wraps every server key and user key not wrapped
// under the current master key, in batches of a transaction each. A key's
// bytes stay the same: what it signs or encrypts still opens. Each row is
// written only if it is still what was read (its master key id and
// nonce), so that runs on several replicas at once never re-wrap one
// twice. A key that does not open is left as it is, named at the end.
// Events are never read or written. A second run finds nothing.
func RotateMasterKey(ctx context.Context, cfg MasterKeyRotationConfig) (Rotation, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return Rotation{}, err
	}
	start := time.Now()
	r := &rotator{cfg: cfg, current: cfg.MasterKeys.Current().ID()}
	done := Rotation{Current: r.current}
	total, err := r.remaining(ctx)
	if err != nil {
		return done, err
	}
	handled := 0
	for _, t := range rotatedTables {
		for after := ""; ; {
			batch, err := r.rotateBatch(ctx, t, after)
			if err != nil {
				return done, err
			}
			if batch.read == 0 {
				break
			}
			after = batch.last
			for _, id := range batch.from {
				if !slices.Contains(done.From, id) {
					done.From = append(done.From, id)
				}
			}
			if t.table == "server_keys" {
				done.ServerKeys += batch.rewrapped
			} else {
				done.UserKeys += batch.rewrapped
			}
			done.Unopened = append(done.Unopened, batch.unopened...)
			done.Raced += batch.read - batch.rewrapped - len(batch.unopened)
			handled += batch.read
			if cfg.Progress != nil {
				cfg.Progress(RotationProgress{Table: t.table, Done: handled, Total: max(total, handled),
					Elapsed: time.Since(start)})
			}
		}
	}
	done.Elapsed = time.Since(start)
	left, err := r.remaining(ctx)
	if err != nil {
		return done, err
	}
	if left == 0 {
		return done, nil
	}
	var why []string
	if n := len(done.Unopened); n > 0 {
		named := strings.Join(done.Unopened[:min(n, maxUnopenedNamed)], ", ")
		if n > maxUnopenedNamed {
			named += fmt.Sprintf(" and %d more", n-maxUnopenedNamed)
		}
		why = append(why, fmt.Sprintf("%d do not open under the master key their row names, each its user's "+
			"Corrupt data (%s)", n, named))
	}
	if meanwhile := left - len(done.Unopened); meanwhile > 0 {
		why = append(why, fmt.Sprintf("%d were written since the rotation started by a process whose current master key "+
			"is not %s", meanwhile, r.current))
	}
	return done, fmt.Errorf("%w: %s", ErrRotationIncomplete, strings.Join(why, "; "))
}

type rotator struct {
	cfg     MasterKeyRotationConfig
	current string
}

// remaining counts the keys not wrapped under the current key.
func (r *rotator) remaining(ctx context.Context) (int, error) {
	d := sqldb.Of(r.cfg.DB)
	n := 0
	for _, t := range rotatedTables {
		var count int
		query := d.Rebind(`SELECT count(*) FROM ` + t.table + ` WHERE master_key_id <> ?`)
		if err := r.cfg.DB.QueryRowContext(ctx, query, r.current).Scan(&count); err != nil {
			return 0, fmt.Errorf("count the keys of %s under older master keys: %w", t.table, err)
		}
		n += count
	}
	return n, nil
}

// rotatedBatch is what a batch read and wrote.
type rotatedBatch struct {
	read, rewrapped int
	unopened        []string // the names of the keys that did not open
	last            string   // the key column's last value read
	from            []string // the master key ids read
}

// rotateBatch re-wraps, in one transaction, the next keys of t after the
// key column's value after that are not under the current key.
func (r *rotator) rotateBatch(ctx context.Context, t wrappedKeys, after string) (rotatedBatch, error) {
	tx, err := r.cfg.DB.BeginTx(ctx, nil)
	if err != nil {
		return rotatedBatch{}, fmt.Errorf("rotate %s: %w", t.table, err)
	}
	defer func() { _ = tx.Rollback() }() // after a commit: sql.ErrTxDone, nothing
	keys, wrapped, err := r.readBatch(ctx, tx, t, after)
	if err != nil || len(keys) == 0 {
		return rotatedBatch{}, err
	}
	batch, err := r.writeBatch(ctx, tx, t, keys, wrapped)
	if err != nil {
		return rotatedBatch{}, err
	}
	if err := tx.Commit(); err != nil {
		return rotatedBatch{}, fmt.Errorf("rotate %s: %w", t.table, err)
	}
	return batch, nil
}

// readBatch reads the next BatchSize rows of t after the key column's
// value after that are not under the current key, in the key column's
// order.
func (r *rotator) readBatch(ctx context.Context, tx *sql.Tx, t wrappedKeys, after string) (
	keys []string, wrapped []WrappedSecret, err error) {
	query := sqldb.Of(r.cfg.DB).Rebind(fmt.Sprintf(`SELECT %s, master_key_id, nonce, ciphertext FROM %s
		WHERE master_key_id <> ? AND %s > ? ORDER BY %s LIMIT %d`, t.keyColumn, t.table, t.keyColumn, t.keyColumn,
		r.cfg.BatchSize))
	rows, err := tx.QueryContext(ctx, query, r.current, after)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", t.table, err)
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	for rows.Next() {
		var key string
		var w WrappedSecret
		if err := rows.Scan(&key, &w.MasterKeyID, &w.Nonce, &w.Ciphertext); err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", t.table, err)
		}
		w.Name = t.secretName(key)
		keys, wrapped = append(keys, key), append(wrapped, w)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", t.table, err)
	}
	return keys, wrapped, nil
}

// writeBatch re-wraps the keys read under the current key, each row
// written only if it still holds what was read.
func (r *rotator) writeBatch(ctx context.Context, tx *sql.Tx, t wrappedKeys, keys []string, wrapped []WrappedSecret) (
	rotatedBatch, error) {
	batch := rotatedBatch{read: len(keys), last: keys[len(keys)-1]}
	set := `master_key_id = ?, nonce = ?, ciphertext = ?`
	if t.stamp != "" {
		set += `, ` + t.stamp + ` = ?`
	}
	update := sqldb.Of(r.cfg.DB).Rebind(`UPDATE ` + t.table + ` SET ` + set + ` WHERE ` + t.keyColumn +
		` = ? AND master_key_id = ? AND nonce = ?`)
	now := time.Now().UTC().Truncate(time.Microsecond)
	for i, w := range wrapped {
		secret, err := r.cfg.MasterKeys.Unwrap(w)
		if errors.Is(err, ErrUnknownMasterKey) || err != nil && !errors.Is(err, ErrWrongMasterKey) {
			return batch, fmt.Errorf("rotate %s: %w", t.table, err)
		}
		if err != nil {
			batch.unopened = append(batch.unopened, w.Name)
			continue
		}
		fresh, err := r.cfg.MasterKeys.Wrap(w.Name, secret)
		clear(secret)
		if err != nil {
			return batch, err
		}
		args := []any{fresh.MasterKeyID, fresh.Nonce, fresh.Ciphertext}
		if t.stamp != "" {
			args = append(args, now)
		}
		res, err := tx.ExecContext(ctx, update, append(args, keys[i], w.MasterKeyID, w.Nonce)...)
		if err != nil {
			return batch, fmt.Errorf("rotate %s: %w", t.table, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return batch, fmt.Errorf("rotate %s: %w", t.table, err)
		} else if n == 1 {
			batch.rewrapped++
		}
		if from := r.cfg.MasterKeys.find(w.MasterKeyID).ID(); !slices.Contains(batch.from, from) {
			batch.from = append(batch.from, from)
		}
	}
	return batch, nil
}
