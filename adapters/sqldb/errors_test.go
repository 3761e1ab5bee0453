package sqldb_test

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
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

// A statement that waited too long for a lock, or ran past its time, may
// pass on a retry: a handler's message must not be poisoned for it.
func TestTransient_Timeouts(t *testing.T) {
	testenv.ForEachBackend(t, func(t *testing.T, backend testenv.Backend) {
		if backend.Name == "sqlite" {
			return // no lock or statement timeout: a writer waits for its busy timeout, then gets SQLITE_BUSY
		}
		db := testenv.MigratedDB(t, backend)
		ctx := testenv.Context(t)
		_, err := db.ExecContext(ctx, "CREATE TABLE locked_rows (id INT PRIMARY KEY)")
		require.NoError(t, err)
		_, err = db.ExecContext(ctx, "INSERT INTO locked_rows (id) VALUES (1)")
		require.NoError(t, err)
		holder, err := db.BeginTx(ctx, nil)
		require.NoError(t, err)
		defer func() { _ = holder.Rollback() }()
		_, err = holder.ExecContext(ctx, "UPDATE locked_rows SET id = 1 WHERE id = 1")
		require.NoError(t, err)

		waiter, err := db.Conn(ctx)
		require.NoError(t, err)
		defer func() { _ = waiter.Close() }()
		lockTimeout, statementTimeout, sleep := "SET lock_timeout = 50", "SET statement_timeout = 50", "SELECT pg_sleep(5)"
		if db.Dialect == "mysql" {
			lockTimeout = "SET SESSION innodb_lock_wait_timeout = 1"
			statementTimeout, sleep = "SET SESSION max_statement_time = 0.05", "SELECT SLEEP(5)" // MariaDB's
			var version string
			require.NoError(t, waiter.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version))
			if !strings.Contains(version, "MariaDB") {
				statementTimeout, sleep = "SET SESSION max_execution_time = 50", "SELECT * FROM locked_rows WHERE SLEEP(5) = 0"
			}
		}
		_, err = waiter.ExecContext(ctx, lockTimeout)
		require.NoError(t, err)
		_, err = waiter.ExecContext(ctx, "UPDATE locked_rows SET id = 1 WHERE id = 1")
		require.Error(t, err)
		assert.True(t, sqldb.Transient(err), "a lock wait timed out: %v", err)

		_, err = waiter.ExecContext(ctx, statementTimeout)
		require.NoError(t, err)
		rows, err := waiter.QueryContext(ctx, sleep)
		if err == nil {
			for rows.Next() {
			}
			err = rows.Err()
			_ = rows.Close()
		}
		require.Error(t, err)
		assert.True(t, sqldb.Transient(err), "a statement timed out: %v", err)
	})
}

// Errors the servers send when they stop, cancel or cut off a statement
// or a connection, built as their drivers return them.
func TestTransient_ServerErrorCodes(t *testing.T) {
	for _, tt := range []struct {
		err       error
		transient bool
	}{
		{&pgconn.PgError{Code: "40001"}, true},   // serialization failure
		{&pgconn.PgError{Code: "40P01"}, true},   // deadlock
		{&pgconn.PgError{Code: "55P03"}, true},   // lock_timeout
		{&pgconn.PgError{Code: "57014"}, true},   // statement_timeout
		{&pgconn.PgError{Code: "57P01"}, true},   // admin shutdown
		{&pgconn.PgError{Code: "08006"}, true},   // connection failure
		{&pgconn.PgError{Code: "53300"}, true},   // too many connections
		{&pgconn.PgError{Code: "23505"}, false},  // unique violation
		{&pgconn.PgError{Code: "42P01"}, false},  // undefined table
		{&mysql.MySQLError{Number: 1040}, true},  // too many connections
		{&mysql.MySQLError{Number: 1053}, true},  // server shutdown
		{&mysql.MySQLError{Number: 1203}, true},  // too many connections for the user
		{&mysql.MySQLError{Number: 1205}, true},  // lock wait timeout
		{&mysql.MySQLError{Number: 1213}, true},  // deadlock
		{&mysql.MySQLError{Number: 1317}, true},  // query interrupted
		{&mysql.MySQLError{Number: 1927}, true},  // connection killed
		{&mysql.MySQLError{Number: 1969}, true},  // max_statement_time
		{&mysql.MySQLError{Number: 3024}, true},  // max_execution_time
		{&mysql.MySQLError{Number: 4031}, true},  // inactivity timeout
		{&mysql.MySQLError{Number: 1062}, false}, // duplicate entry
		{&mysql.MySQLError{Number: 1146}, false}, // no such table
	} {
		assert.Equal(t, tt.transient, sqldb.Transient(fmt.Errorf("claim: %w", tt.err)), "%v", tt.err)
	}
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
