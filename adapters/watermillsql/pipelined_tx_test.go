package watermillsql_test

import (
	"database/sql"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"

	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/internal/testenv"
)

// pipelinedDB is a PostgreSQL database of one connection with a table of
// numbers 1 to 3.
func pipelinedDB(t *testing.T) *testenv.DB {
	return testenv.PostgresOfOneConnection(t, `CREATE TABLE numbers (n BIGINT PRIMARY KEY, name TEXT, data BYTEA);
		INSERT INTO numbers VALUES (1, 'one', 'x'), (2, 'two', NULL), (3, NULL, 'z')`)
}

// execAtCommit is the pipelined transaction's write kept for COMMIT.
type execAtCommit interface {
	ExecAtCommit(query string, args []any, committed func(rowsAffected int64)) error
}

func begin(t *testing.T, db *sql.DB) wsql.Tx {
	t.Helper()
	tx, err := watermillsql.PipelinedBeginner(db).BeginTx(testenv.Context(t), &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	require.NoError(t, err)
	return tx
}

// A delivery's transaction: the select, a write in the transaction (a
// grant), the ack, COMMIT.
func TestPipelinedTx_CommitsTheAckWithItsWrites(t *testing.T) {
	db := pipelinedDB(t)
	tx := begin(t, db.DB)

	rows, err := tx.QueryContext(testenv.Context(t), `SELECT n, name, data FROM numbers ORDER BY n FOR UPDATE`)
	require.NoError(t, err)
	var got []string
	for rows.Next() {
		var (
			n    int64
			name sql.NullString
			data []byte
		)
		require.NoError(t, rows.Scan(&n, &name, &data))
		got = append(got, name.String+":"+string(data))
	}
	assert.Equal(t, []string{"one:x", "two:", ":z"}, got)
	res, err := tx.ExecContext(testenv.Context(t), `INSERT INTO numbers (n) VALUES ($1)`, 4)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	assert.EqualValues(t, 1, n, "a write that is not an ack runs at once")
	_, err = tx.ExecContext(testenv.Context(t), watermillsql.AckMark+`DELETE FROM numbers WHERE n IN ($1, $2)`, 1, 2)
	require.NoError(t, err)
	committed := int64(-1)
	require.NoError(t, tx.(execAtCommit).ExecAtCommit(`INSERT INTO numbers (n) VALUES ($1), ($2)`, []any{5, 6},
		func(n int64) { committed = n }))
	assert.EqualValues(t, -1, committed, "not told before the COMMIT")

	require.NoError(t, tx.Commit())

	assert.EqualValues(t, 2, committed, "told its row count once committed")
	assert.Equal(t, []string{"(3)", "(4)", "(5)", "(6)"}, db.RowsAsText(t, `SELECT n FROM numbers ORDER BY n`))
}

// An ack waits for COMMIT: one that fails there rolls the transaction
// back, and the connection goes back to the pool outside a transaction.
func TestPipelinedTx_AnAckThatFailsAtCommitRollsBack(t *testing.T) {
	db := pipelinedDB(t)
	tx := begin(t, db.DB)
	_, err := tx.QueryContext(testenv.Context(t), `SELECT n FROM numbers`)
	require.NoError(t, err)
	_, err = tx.ExecContext(testenv.Context(t), `INSERT INTO numbers (n) VALUES (4)`)
	require.NoError(t, err)

	_, err = tx.ExecContext(testenv.Context(t), watermillsql.AckMark+`DELETE FROM no_such_table WHERE n = $1`, 1)
	require.NoError(t, err, "sent with COMMIT, not now")
	told := false
	require.NoError(t, tx.(execAtCommit).ExecAtCommit(`INSERT INTO numbers (n) VALUES (5)`, nil,
		func(int64) { told = true }))
	err = tx.Commit()

	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "42P01", pgErr.Code)
	assert.Equal(t, 3, db.Count(t, `SELECT count(*) FROM numbers`), "the inserts rolled back; the connection is usable")
	assert.False(t, told, "a write that did not commit is not told")
	assert.ErrorIs(t, tx.Rollback(), sql.ErrTxDone)
}

func TestPipelinedTx_RollsBack(t *testing.T) {
	db := pipelinedDB(t)
	tx := begin(t, db.DB)
	_, err := tx.ExecContext(testenv.Context(t), `DELETE FROM numbers`)
	require.NoError(t, err)
	_, err = tx.ExecContext(testenv.Context(t), watermillsql.AckMark+`INSERT INTO numbers (n) VALUES (5)`)
	require.NoError(t, err)

	require.NoError(t, tx.Rollback())

	assert.Equal(t, 3, db.Count(t, `SELECT count(*) FROM numbers`))
	assert.ErrorIs(t, tx.Commit(), sql.ErrTxDone)
}

// A failed statement aborts the transaction; its rollback leaves the
// connection usable.
func TestPipelinedTx_AFailedStatementRollsBack(t *testing.T) {
	db := pipelinedDB(t)
	tx := begin(t, db.DB)
	_, err := tx.ExecContext(testenv.Context(t), `INSERT INTO numbers (n) VALUES (4)`)
	require.NoError(t, err)

	_, err = tx.QueryContext(testenv.Context(t), `SELECT nothing FROM numbers`)
	require.Error(t, err)
	require.NoError(t, tx.Rollback())

	assert.Equal(t, 3, db.Count(t, `SELECT count(*) FROM numbers`))
}

// beforeEnd is the pipelined transaction's hook run before it ends.
type beforeEnd interface {
	BeforeEnd(f func() error) error
}

// What runs before the end runs before COMMIT, in order; its error fails
// the COMMIT, which rolls back. It runs before a ROLLBACK too.
func TestPipelinedTx_RunsWhatWasKeptForTheEnd(t *testing.T) {
	db := pipelinedDB(t)
	var ran []string
	keep := func(tx wsql.Tx, name string, err error) {
		require.NoError(t, tx.(beforeEnd).BeforeEnd(func() error { ran = append(ran, name); return err }))
	}

	tx := begin(t, db.DB)
	_, err := tx.ExecContext(testenv.Context(t), `INSERT INTO numbers (n) VALUES (4)`)
	require.NoError(t, err)
	keep(tx, "a", nil)
	keep(tx, "b", nil)
	require.NoError(t, tx.Commit())
	assert.Equal(t, []string{"a", "b"}, ran, "in order")
	assert.Equal(t, 4, db.Count(t, `SELECT count(*) FROM numbers`))
	assert.ErrorIs(t, tx.(beforeEnd).BeforeEnd(func() error { return nil }), sql.ErrTxDone)

	ran = nil
	tx = begin(t, db.DB)
	_, err = tx.ExecContext(testenv.Context(t), `INSERT INTO numbers (n) VALUES (5)`)
	require.NoError(t, err)
	errNotWritten := errors.New("not written")
	keep(tx, "a", errNotWritten)
	require.ErrorIs(t, tx.Commit(), errNotWritten)
	assert.Equal(t, 4, db.Count(t, `SELECT count(*) FROM numbers`), "rolled back; the connection is usable")

	ran = nil
	tx = begin(t, db.DB)
	keep(tx, "a", nil)
	require.NoError(t, tx.Rollback())
	assert.Equal(t, []string{"a"}, ran, "before ROLLBACK too")
}
