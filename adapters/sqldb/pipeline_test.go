package sqldb_test

import (
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/internal/testenv"
)

// pipelineDB is a PostgreSQL database of one connection with a table of
// unique names.
func pipelineDB(t *testing.T) *testenv.DB {
	return testenv.PostgresOfOneConnection(t, `CREATE TABLE names (name TEXT PRIMARY KEY)`)
}

func TestPipeline_CommitsEveryStatement(t *testing.T) {
	db := pipelineDB(t)
	var p sqldb.Pipeline
	for _, name := range []string{"ada", "grace"} {
		res, err := p.ExecContext(testenv.Context(t), `INSERT INTO names (name) VALUES ($1)`, name)
		require.NoError(t, err)
		n, err := res.RowsAffected()
		require.NoError(t, err)
		assert.EqualValues(t, 1, n)
	}

	require.NoError(t, p.Commit(testenv.Context(t), db.DB))

	assert.Equal(t, []string{"(ada)", "(grace)"}, db.RowsAsText(t, `SELECT name FROM names ORDER BY name`))
}

// A statement that affected no row, where the writer read that it did,
// rolls the whole transaction back.
func TestPipeline_RollsBackWhenACheckedStatementMissed(t *testing.T) {
	db := pipelineDB(t)
	_, err := db.ExecContext(testenv.Context(t), `INSERT INTO names (name) VALUES ('ada')`)
	require.NoError(t, err)
	var p sqldb.Pipeline
	_, err = p.ExecContext(testenv.Context(t), `INSERT INTO names (name) VALUES ('grace')`)
	require.NoError(t, err)
	res, err := p.ExecContext(testenv.Context(t), `INSERT INTO names (name) VALUES ('ada') ON CONFLICT DO NOTHING`)
	require.NoError(t, err)
	_, err = res.RowsAffected()
	require.NoError(t, err)

	err = p.Commit(testenv.Context(t), db.DB)

	require.ErrorIs(t, err, sqldb.ErrNotPipelined)
	assert.Equal(t, []string{"(ada)"}, db.RowsAsText(t, `SELECT name FROM names`), "grace rolled back")
}

// The same statement unchecked commits: only what the writer read is checked.
func TestPipeline_LeavesUncheckedCountsAlone(t *testing.T) {
	db := pipelineDB(t)
	_, err := db.ExecContext(testenv.Context(t), `INSERT INTO names (name) VALUES ('ada')`)
	require.NoError(t, err)
	var p sqldb.Pipeline
	_, err = p.ExecContext(testenv.Context(t), `INSERT INTO names (name) VALUES ('ada') ON CONFLICT DO NOTHING`)
	require.NoError(t, err)
	_, err = p.ExecContext(testenv.Context(t), `INSERT INTO names (name) VALUES ('grace')`)
	require.NoError(t, err)

	require.NoError(t, p.Commit(testenv.Context(t), db.DB))

	assert.Equal(t, []string{"(ada)", "(grace)"}, db.RowsAsText(t, `SELECT name FROM names ORDER BY name`))
}

func TestPipeline_RollsBackAFailedStatement(t *testing.T) {
	db := pipelineDB(t)
	var p sqldb.Pipeline
	for _, name := range []string{"grace", "ada", "ada"} {
		_, err := p.ExecContext(testenv.Context(t), `INSERT INTO names (name) VALUES ($1)`, name)
		require.NoError(t, err)
	}

	err := p.Commit(testenv.Context(t), db.DB)

	require.ErrorIs(t, err, sqldb.ErrNotPipelined)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the cause is kept")
	assert.Equal(t, "23505", pgErr.Code)
	assert.Zero(t, db.Count(t, `SELECT count(*) FROM names`), "nothing committed, and the connection is usable")
}

func TestPipeline_AnswersNoQuery(t *testing.T) {
	var p sqldb.Pipeline
	rows, err := p.QueryContext(testenv.Context(t), `SELECT 1`)
	require.ErrorIs(t, err, sqldb.ErrNotPipelined)
	assert.Nil(t, rows)
}
