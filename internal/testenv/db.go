package testenv

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	_ "modernc.org/sqlite" // the "sqlite" driver

	"github.com/onboard/onboard/adapters/sqldb"
)

// dbTimeout bounds every query a DB helper sends.
const dbTimeout = 30 * time.Second

// DB is a test's own handle on a database of any backend onboard supports.
// The queries given to its helpers are written once with ? placeholders and
// rebound for its dialect.
type DB struct {
	*sql.DB
	// Dialect is "postgres", "mysql" or "sqlite", as sqldb.Of tells.
	Dialect string
}

// NewDB wraps a handle opened with one of the drivers onboard uses.
func NewDB(db *sql.DB) *DB { return &DB{DB: db, Dialect: sqldb.Of(db).Name()} }

// MigratedDB opens a fresh database of the backend through sqldb.Open,
// which applies the migrations, and closes it when the test ends.
func MigratedDB(t testing.TB, backend Backend) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	db, err := sqldb.Open(ctx, backend.URL(t), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("open and migrate the %s test database: %v", backend.Name, err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return NewDB(db)
}

// ForEachBackend runs test once per database backend, as a subtest named
// for it: sqlite, postgres, mysql.
func ForEachBackend(t *testing.T, test func(t *testing.T, backend Backend)) {
	t.Helper()
	for _, backend := range Backends() {
		t.Run(backend.Name, func(t *testing.T) { test(t, backend) })
	}
}

// PostgresOfOneConnection is a new PostgreSQL database on a pool of one
// connection, so that a connection left inside a transaction fails the
// next statement, with schema (SQL statements) run on it.
func PostgresOfOneConnection(t *testing.T, schema string) *DB {
	t.Helper()
	db := OpenDB(t, PostgresDatabase(t))
	db.SetMaxOpenConns(1)
	if _, err := db.ExecContext(Context(t), schema); err != nil {
		t.Fatalf("create the test schema: %v", err)
	}
	return db
}

// OpenDB opens the database a DATABASE_URL names (postgres://, mysql:// or
// sqlite:path), with the driver of its dialect and without migrating it,
// and closes it when the test ends. On SQLite it waits on another process's
// write lock rather than fail with SQLITE_BUSY.
func OpenDB(t testing.TB, dbURL string) *DB {
	t.Helper()
	var driver, dsn string
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		driver, dsn = "sqlite", "file:"+path+"?_pragma=busy_timeout(10000)"
	} else {
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatalf("DATABASE_URL is not a URL: %v", err)
		}
		switch u.Scheme {
		case "postgres", "postgresql":
			driver, dsn = "pgx", dbURL
		case "mysql":
			cfg := mysql.NewConfig()
			cfg.User = u.User.Username()
			cfg.Passwd, _ = u.User.Password()
			cfg.Net, cfg.Addr = "tcp", u.Host
			cfg.DBName = strings.TrimPrefix(u.Path, "/")
			driver, dsn = "mysql", cfg.FormatDSN()
		default:
			t.Fatalf("DATABASE_URL: unknown scheme %q", u.Scheme)
		}
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return NewDB(db)
}

// Rebind turns the query's ? placeholders into the dialect's, as the
// production code does.
func (db *DB) Rebind(query string) string { return sqldb.Of(db.DB).Rebind(query) }

// Quote quotes an identifier, which may hold dots (watermill's table names
// do): `name` on MySQL, "name" on PostgreSQL and SQLite.
func (db *DB) Quote(name string) string {
	if db.Dialect == "mysql" {
		return "`" + strings.ReplaceAll(name, "`", "``") + "`"
	}
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Count runs a count query written with ? placeholders.
func (db *DB) Count(t testing.TB, query string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	var n int
	if err := db.QueryRowContext(ctx, db.Rebind(query), args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

// RowsAsText runs a query written with ? placeholders, typically
// SELECT * FROM a table, and returns every row as text: its columns, read
// whatever their types, between parentheses and joined by commas. Binary
// columns come as their raw bytes, so an envelope or payload reads as it
// was written; NULL reads NULL and times read RFC 3339.
func (db *DB) RowsAsText(t testing.TB, query string, args ...any) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	defer cancel()
	rows, err := db.QueryContext(ctx, db.Rebind(query), args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer func() { _ = rows.Close() }()
	columns, err := rows.Columns()
	if err != nil {
		t.Fatalf("%s: columns: %v", query, err)
	}
	var out []string
	for rows.Next() {
		values := make([]any, len(columns))
		dest := make([]any, len(columns))
		for i := range values {
			dest[i] = &values[i]
		}
		if err := rows.Scan(dest...); err != nil {
			t.Fatalf("%s: scan: %v", query, err)
		}
		fields := make([]string, len(values))
		for i, v := range values {
			switch v := v.(type) {
			case nil:
				fields[i] = "NULL"
			case []byte:
				fields[i] = string(v)
			case time.Time:
				fields[i] = v.Format(time.RFC3339Nano)
			default:
				fields[i] = fmt.Sprint(v)
			}
		}
		out = append(out, "("+strings.Join(fields, ",")+")")
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return out
}

// LogOldTransactions logs, for diagnostics only, the write transactions open
// for over a second in any database of the handle's server: from
// pg_stat_activity on PostgreSQL, information_schema.innodb_trx on MySQL,
// nothing on SQLite. On PostgreSQL, watermill-sql (the sql transport and the
// outbox forwarder) only delivers rows written before every transaction
// still running on the server, so any of these holds its delivery back.
func LogOldTransactions(t testing.TB, db *sql.DB) {
	t.Helper()
	dialect := sqldb.Of(db).Name()
	var query string
	switch dialect {
	case "postgres":
		query = `SELECT format('%s (pid %s, %s, open %s): %s', COALESCE(datname, '?'), pid,
			COALESCE(state, '?'), date_trunc('milliseconds', now() - xact_start), left(query, 120))
		FROM pg_stat_activity
		WHERE backend_xid IS NOT NULL AND xact_start < now() - interval '1 second' ORDER BY xact_start`
	case "mysql":
		query = `SELECT CONCAT('thread ', trx_mysql_thread_id, ' (', trx_state, ', since ', trx_started, '): ',
			LEFT(COALESCE(trx_query, '?'), 120))
		FROM information_schema.innodb_trx
		WHERE trx_started < NOW() - INTERVAL 1 SECOND ORDER BY trx_started`
	default:
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		t.Logf("list old transactions on the %s server: %v", dialect, err)
		return
	}
	defer func() { _ = rows.Close() }()
	var out []string
	for rows.Next() {
		var line string
		if err := rows.Scan(&line); err != nil {
			t.Logf("list old transactions on the %s server: %v", dialect, err)
			return
		}
		out = append(out, strings.Join(strings.Fields(line), " "))
	}
	if err := rows.Err(); err != nil {
		t.Logf("list old transactions on the %s server: %v", dialect, err)
		return
	}
	if len(out) == 0 {
		t.Logf("write transactions open for over a second on the %s server: none", dialect)
		return
	}
	t.Logf("write transactions open for over a second on the %s server (they hold back watermill-sql delivery):\n\t%s",
		dialect, strings.Join(out, "\n\t"))
}

// Context is a context that ends after dbTimeout, or with the test.
func Context(t testing.TB) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), dbTimeout)
	t.Cleanup(cancel)
	return ctx
}
