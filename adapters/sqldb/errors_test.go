package sqldb_test

import (
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/internal/testenv"
)

func TestTransient_DatabaseErrors(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		db := testenv.MigratedDB(t, backend)
		_, err := db.ExecContext(testenv.Context(t), "SELEC 1")
		require.Error(t, err)
		assert.False(t, sqldb.Transient(err), "a syntax error fails every time: %v", err)

		_, err = db.ExecContext(testenv.Context(t), "INSERT INTO no_such_table VALUES (1)")
		require.Error(t, err)
		assert.False(t, sqldb.Transient(err), "a missing table fails every time: %v", err)

		if backend.Name == "sqlite" {
			return // no server to lose
		}
		err = queryOnKilledConnection(t, db)
		require.Error(t, err)
		assert.True(t, sqldb.Transient(err), "a connection the server dropped is worth a retry: %v", err)
	})
}

// queryOnKilledConnection has the server end one of db's connections, as a
// restart would, and queries on it.
func queryOnKilledConnection(t *testing.T, db *testenv.DB) error {
	t.Helper()
	ctx := testenv.Context(t)
	conn, err := db.Conn(ctx)
	require.NoError(t, err)
	defer func() { _ = conn.Close() }()
	var id int64
	idQuery, kill := "SELECT pg_backend_pid()", "SELECT pg_terminate_backend($1, 5000)" // waits until it is gone
	if db.Dialect == "mysql" {
		idQuery, kill = "SELECT CONNECTION_ID()", "KILL CONNECTION ?"
	}
	require.NoError(t, conn.QueryRowContext(ctx, idQuery).Scan(&id))
	_, err = db.ExecContext(ctx, kill, id)
	require.NoError(t, err)
	_, err = conn.ExecContext(ctx, "SELECT 1")
	return err
}

func TestTransient_UnreachableDatabase(t *testing.T) {
	for _, url := range []string{
		"postgres://postgres@127.0.0.1:1/x?connect_timeout=2",
		"mysql://root@127.0.0.1:1/x",
	} {
		_, err := sqldb.Open(testenv.Context(t), url, quietLogger())
		require.Error(t, err, url)
		assert.True(t, sqldb.Transient(err), "%s: a server that does not answer may come back: %v", url, err)
	}
}

// pgx's "conn closed": a connection it closed when its socket went away,
// as a database cut leaves it (seen wrapped by watermill-sql's Subscribe).
func TestTransient_ConnectionClosedByPgx(t *testing.T) {
	assert.True(t, sqldb.Transient(fmt.Errorf("cannot subscribe topic outbox: %w", pgconn.ErrConnClosed)))
	assert.False(t, sqldb.Transient(errors.New("conn closed")), "the text alone is no evidence")
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
