package watermillsql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"time"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/jackc/pgx/v5"

	"github.com/onboard/onboard/adapters/sqldb"
)

// ackMark starts the query of an ack (QueueOffsetsAdapter.AckMessageQuery
// on PostgreSQL), which a pipelinedTx sends with its COMMIT.
const ackMark = "/* ack */ "

// errAckDeferred is the row count of an ack before its COMMIT: not known
// yet (watermill-sql only logs it).
var errAckDeferred = errors.New("the ack is sent with COMMIT: its row count is not known yet")

// pipelinedBeginner is watermill-sql's Beginner on PostgreSQL (through
// pgx) whose transactions save two round trips of each delivery: BEGIN
// goes with the transaction's first statement (the subscriber's select),
// and the ack with COMMIT. database/sql's took one round trip for each.
// Statements outside a transaction go through database/sql.
type pipelinedBeginner struct {
	wsql.Beginner
	db *sql.DB
}

func newPipelinedBeginner(db *sql.DB) pipelinedBeginner {
	return pipelinedBeginner{Beginner: wsql.BeginnerFromStdSQL(db), db: db}
}

// BeginTx reserves a connection for the transaction; BEGIN waits for
// its first statement.
func (b pipelinedBeginner) BeginTx(ctx context.Context, opts *sql.TxOptions) (wsql.Tx, error) {
	begin := "BEGIN"
	if opts != nil && opts.Isolation != sql.LevelDefault {
		level, ok := isolationLevels[opts.Isolation]
		if !ok {
			return nil, fmt.Errorf("isolation level %s on PostgreSQL", opts.Isolation)
		}
		begin += " ISOLATION LEVEL " + level
	}
	conn, err := b.db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	return &pipelinedTx{conn: conn, ctx: ctx, begin: begin}, nil
}

var isolationLevels = map[sql.IsolationLevel]string{
	sql.LevelReadUncommitted: "READ UNCOMMITTED",
	sql.LevelReadCommitted:   "READ COMMITTED",
	sql.LevelRepeatableRead:  "REPEATABLE READ",
	sql.LevelSerializable:    "SERIALIZABLE",
}

// pipelinedTx is a transaction on one connection of the pool, which it
// reaches through pgx for each batch of statements.
type pipelinedTx struct {
	conn *sql.Conn
	// ctx ends Commit's and Rollback's statements, as watermill-sql's pgx
	// adapter does.
	ctx context.Context
	// begin is the BEGIN statement until it is sent; "" after.
	begin string
	acks  []pgxStatement
	done  bool
	// beforeEnd run before COMMIT or ROLLBACK, in the order given.
	beforeEnd []func() error
}

type pgxStatement struct {
	query string
	args  []any
	// committed is told the statement's row count once its transaction
	// committed; nil: nobody.
	committed func(rowsAffected int64)
}

// batch sends the statements, BEGIN first if not sent yet, and hands the
// results of the statements (not BEGIN's) to read.
func (t *pipelinedTx) batch(ctx context.Context, statements []pgxStatement, read func(pgx.BatchResults) error) error {
	if t.done {
		return sql.ErrTxDone
	}
	return sqldb.OnPgx(t.conn, func(conn *pgx.Conn) error {
		batch := &pgx.Batch{}
		begin := t.begin
		if begin != "" {
			batch.Queue(begin)
		}
		for _, s := range statements {
			batch.Queue(s.query, s.args...)
		}
		results := conn.SendBatch(ctx, batch)
		err := func() error {
			if begin != "" {
				if _, err := results.Exec(); err != nil {
					return err
				}
				t.begin = ""
			}
			return read(results)
		}()
		if closeErr := results.Close(); err == nil {
			err = closeErr
		}
		return err
	})
}

// QueryContext runs the query and reads its rows whole.
func (t *pipelinedTx) QueryContext(ctx context.Context, query string, args ...any) (wsql.Rows, error) {
	rows := &bufferedRows{}
	err := t.batch(ctx, []pgxStatement{{query: query, args: args}}, func(results pgx.BatchResults) error {
		r, err := results.Query()
		if err != nil {
			return err
		}
		defer r.Close()
		for r.Next() {
			values, err := r.Values()
			if err != nil {
				return err
			}
			rows.rows = append(rows.rows, values)
		}
		return r.Err()
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// ExecContext runs the statement, or keeps an ack for COMMIT.
func (t *pipelinedTx) ExecContext(ctx context.Context, query string, args ...any) (wsql.Result, error) {
	if strings.HasPrefix(query, ackMark) {
		if t.done {
			return nil, sql.ErrTxDone
		}
		t.acks = append(t.acks, pgxStatement{query: query, args: args})
		return deferredAck{}, nil
	}
	var result wsql.Result
	err := t.batch(ctx, []pgxStatement{{query: query, args: args}}, func(results pgx.BatchResults) error {
		tag, err := results.Exec()
		result = wsql.PgxResult{CommandTag: tag}
		return err
	})
	return result, err
}

// ExecAtCommit keeps a write for COMMIT, as an ack is kept, and tells
// committed (nil: nobody) its row count once the transaction committed.
// A write whose row count decides nothing before the COMMIT (a grant that
// is its message's effect) so costs no round trip of its own.
func (t *pipelinedTx) ExecAtCommit(query string, args []any, committed func(rowsAffected int64)) error {
	if t.done {
		return sql.ErrTxDone
	}
	t.acks = append(t.acks, pgxStatement{query: query, args: args, committed: committed})
	return nil
}

// BeforeEnd has f run before the transaction's COMMIT, which an error of
// f fails, and before its ROLLBACK. A write that must be durable before
// its message's ack, and is sent with other statements meanwhile, is sent
// so at the latest.
func (t *pipelinedTx) BeforeEnd(f func() error) error {
	if t.done {
		return sql.ErrTxDone
	}
	t.beforeEnd = append(t.beforeEnd, f)
	return nil
}

// runBeforeEnd runs the functions kept for the end, and returns the
// first error.
func (t *pipelinedTx) runBeforeEnd() error {
	var first error
	for _, f := range t.beforeEnd {
		if err := f(); err != nil && first == nil {
			first = err
		}
	}
	t.beforeEnd = nil
	return first
}

type deferredAck struct{}

func (deferredAck) RowsAffected() (int64, error) { return 0, errAckDeferred }

// Commit sends the acks and the writes kept for it, then COMMIT; one
// that fails rolls the transaction back.
func (t *pipelinedTx) Commit() error {
	if t.done {
		return sql.ErrTxDone
	}
	defer t.release()
	if err := t.runBeforeEnd(); err != nil {
		t.done = true
		return err // release rolls back what was sent
	}
	if t.begin != "" && len(t.acks) == 0 { // nothing was sent
		t.done = true
		return nil
	}
	statements := append(t.acks, pgxStatement{query: "COMMIT"})
	counts := make([]int64, len(statements))
	err := t.batch(t.ctx, statements, func(results pgx.BatchResults) error {
		for i := range statements {
			tag, err := results.Exec()
			if err != nil {
				return err
			}
			counts[i] = tag.RowsAffected()
		}
		return nil
	})
	t.done = true
	if err != nil {
		return err
	}
	for i, s := range statements {
		if s.committed != nil {
			s.committed(counts[i])
		}
	}
	return nil
}

// Rollback ends the transaction, unless it ended.
func (t *pipelinedTx) Rollback() error {
	if t.done {
		return sql.ErrTxDone
	}
	defer t.release()
	_ = t.runBeforeEnd() // the rollback goes ahead whatever they answer
	t.acks = nil
	var err error
	if t.begin == "" {
		ctx, cancel := t.endContext()
		defer cancel()
		err = t.batch(ctx, []pgxStatement{{query: "ROLLBACK"}}, func(results pgx.BatchResults) error {
			_, err := results.Exec()
			return err
		})
	}
	t.done = true
	return err
}

// release returns the connection to the pool, rolling back what a
// failed COMMIT left open, or drops it when that fails too.
func (t *pipelinedTx) release() {
	_ = sqldb.OnPgx(t.conn, func(conn *pgx.Conn) error {
		if conn.PgConn().TxStatus() == 'I' {
			return nil
		}
		ctx, cancel := t.endContext()
		defer cancel()
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil || conn.PgConn().TxStatus() != 'I' {
			return driver.ErrBadConn
		}
		return nil
	})
	_ = t.conn.Close()
}

// endContext bounds a ROLLBACK, which runs even when the transaction's
// context ended.
func (t *pipelinedTx) endContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(t.ctx), rollbackTimeout)
}

// rollbackTimeout bounds a ROLLBACK.
const rollbackTimeout = 5 * time.Second

// bufferedRows are a query's rows, read whole, as pgx decoded them.
type bufferedRows struct {
	rows [][]any
	next int
}

func (r *bufferedRows) Next() bool {
	r.next++
	return r.next <= len(r.rows)
}

func (r *bufferedRows) Close() error { return nil }

// Scan assigns the current row's values to dest: sql.Scanners, or
// pointers to the values' own types (a text value, or NULL, to a []byte
// too).
func (r *bufferedRows) Scan(dest ...any) error {
	row := r.rows[r.next-1]
	if len(dest) != len(row) {
		return fmt.Errorf("scan %d columns into %d values", len(row), len(dest))
	}
	for i, v := range row {
		if err := assign(dest[i], v); err != nil {
			return fmt.Errorf("column %d: %w", i+1, err)
		}
	}
	return nil
}

func assign(dest, v any) error {
	switch d := dest.(type) {
	case sql.Scanner:
		return d.Scan(v)
	case *[]byte:
		switch v := v.(type) {
		case nil:
			*d = nil
			return nil
		case []byte:
			*d = v
			return nil
		case string:
			*d = []byte(v)
			return nil
		}
	case *string:
		if s, ok := v.(string); ok {
			*d = s
			return nil
		}
	case *int64:
		if n, ok := v.(int64); ok {
			*d = n
			return nil
		}
	}
	return fmt.Errorf("cannot scan a %T into a %T", v, dest)
}
