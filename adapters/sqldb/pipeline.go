package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// ErrNotPipelined is what a Pipeline answers to a statement whose answer
// the writer needs before it goes on (a query), and what Commit returns
// when a statement did not do what the writer was told it did: run the
// write in a transaction instead.
var ErrNotPipelined = errors.New("not pipelined")

// Pipeline records the writes of one transaction on PostgreSQL and sends
// them at once: BEGIN and every statement in one round trip, COMMIT in a
// second, where a transaction of database/sql takes a round trip per
// statement. A writer runs against it as against a *sql.Tx that answers
// each write at once: ExecContext records the statement, and a result's
// RowsAffected answers 1, which Commit then checks, rolling back (with
// ErrNotPipelined) when a statement affected another number of rows.
type Pipeline struct {
	statements []pipelined
}

type pipelined struct {
	query string
	args  []any
	// checked: the writer read RowsAffected, answered 1.
	checked bool
}

// ExecContext records the statement.
func (p *Pipeline) ExecContext(_ context.Context, query string, args ...any) (sql.Result, error) {
	p.statements = append(p.statements, pipelined{query: query, args: args})
	return pipelinedResult{p: p, i: len(p.statements) - 1}, nil
}

// QueryContext refuses: a query's rows are not known before Commit.
func (p *Pipeline) QueryContext(context.Context, string, ...any) (*sql.Rows, error) {
	return nil, fmt.Errorf("a query in the pipeline: %w", ErrNotPipelined)
}

type pipelinedResult struct {
	p *Pipeline
	i int
}

func (r pipelinedResult) LastInsertId() (int64, error) {
	return 0, fmt.Errorf("LastInsertId in the pipeline: %w", ErrNotPipelined)
}

func (r pipelinedResult) RowsAffected() (int64, error) {
	r.p.statements[r.i].checked = true
	return 1, nil
}

// Commit runs the recorded statements in one transaction on db, which
// must be PostgreSQL through pgx. A statement's error, or a checked
// statement that affected other than one row, rolls it back:
// ErrNotPipelined with the cause; the writer's own transaction then
// tells what happened.
func (p *Pipeline) Commit(ctx context.Context, db *sql.DB) error {
	return OnPooledPgx(ctx, db, func(c *pgx.Conn) error {
		err := p.send(ctx, c)
		if c.PgConn().TxStatus() != 'I' { // still in the transaction: drop the connection
			return errors.Join(err, driver.ErrBadConn)
		}
		return err
	})
}

// OnPgx runs f on the pgx connection under conn, a connection of a
// PostgreSQL database opened with pgx; one that f leaves closed (pgx
// closes it on a canceled context) is dropped from the pool, as is one f
// answers driver.ErrBadConn for.
func OnPgx(conn *sql.Conn, f func(*pgx.Conn) error) error {
	return conn.Raw(func(driverConn any) error {
		c, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("a %T, not a pgx connection: %w", driverConn, ErrNotPipelined)
		}
		err := f(c.Conn())
		if c.Conn().IsClosed() {
			return errors.Join(err, driver.ErrBadConn)
		}
		return err
	})
}

// OnPooledPgx runs f on the pgx connection under one of db's pooled
// connections, as OnPgx does.
func OnPooledPgx(ctx context.Context, db *sql.DB, f func(*pgx.Conn) error) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer func() { _ = conn.Close() }()
	return OnPgx(conn, f)
}

// send runs BEGIN and the statements in one batch, then COMMIT, or
// ROLLBACK on the first statement that failed its check.
func (p *Pipeline) send(ctx context.Context, conn *pgx.Conn) error {
	batch := &pgx.Batch{}
	batch.Queue("BEGIN")
	for _, s := range p.statements {
		batch.Queue(s.query, s.args...)
	}
	results := conn.SendBatch(ctx, batch)
	failed := p.check(results)
	if err := results.Close(); failed == nil && err != nil {
		failed = err
	}
	if failed != nil {
		if _, err := conn.Exec(ctx, "ROLLBACK"); err != nil {
			return errors.Join(failed, err)
		}
		return fmt.Errorf("%w: %w", ErrNotPipelined, failed)
	}
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// check reads the batch's results: the first error, or the first checked
// statement that did not affect exactly one row.
func (p *Pipeline) check(results pgx.BatchResults) error {
	if _, err := results.Exec(); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	for i, s := range p.statements {
		tag, err := results.Exec()
		if err != nil {
			return fmt.Errorf("statement %d: %w", i+1, err)
		}
		if s.checked && tag.RowsAffected() != 1 {
			return fmt.Errorf("statement %d affected %d rows, not 1", i+1, tag.RowsAffected())
		}
	}
	return nil
}
