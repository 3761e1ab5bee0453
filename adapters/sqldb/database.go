// Package sqldb opens onboard's database by URL (PostgreSQL, MySQL/MariaDB
// or SQLite), applies its migrations, and owns every difference between the
// three: the Dialect type, and the classes of database errors.
package sqldb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver
)

//go:embed migrations
var migrationFiles embed.FS

// connectTimeout bounds one attempt to reach a database server.
const connectTimeout = 5 * time.Second

// Open opens the database a URL names (postgres://…, mysql://… or
// sqlite:PATH), checks that it answers within the context's deadline and
// applies the migrations of its dialect.
func Open(ctx context.Context, rawURL string, logger *slog.Logger) (*sql.DB, error) {
	driver, dsn, err := driverDSN(rawURL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// Room for every handler subscription's transaction (3 handlers × HandlerConcurrency),
	// the queries of the handlers in flight, the forwarder and the API.
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(10)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("database unreachable: %w", redactConnectError(err))
	}
	if err := migrate(ctx, db, logger); err != nil {
		_ = db.Close()
		return nil, err
	}
	return db, nil
}

// driverDSN turns DATABASE_URL into a driver name and its DSN. Errors never
// quote the URL, which may hold a password.
func driverDSN(rawURL string) (driver, dsn string, err error) {
	if path, ok := SQLitePath(rawURL); ok {
		return sqliteDSN(path)
	}
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return "", "", errors.New("DATABASE_URL: want postgres://…, mysql://… or sqlite:PATH")
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		q := u.Query()
		if q.Get("connect_timeout") == "" {
			q.Set("connect_timeout", fmt.Sprint(connectTimeout.Seconds()))
		}
		u.RawQuery = q.Encode()
		return "pgx", u.String(), nil
	case "mysql":
		return mysqlDSN(u)
	}
	return "", "", errors.New("DATABASE_URL: want postgres://…, mysql://… or sqlite:PATH")
}

// mysqlDSN maps mysql://user:pass@host:port/db?param=value to the driver's
// DSN, in UTC with parsed times.
func mysqlDSN(u *url.URL) (string, string, error) {
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	cfg.Timeout = connectTimeout
	params := map[string]string{}
	for key, values := range u.Query() {
		params[key] = values[len(values)-1]
	}
	if len(params) > 0 {
		cfg.Params = params
	}
	if cfg.DBName == "" {
		return "", "", errors.New("DATABASE_URL: name the MySQL database: mysql://user@host:port/database")
	}
	return "mysql", cfg.FormatDSN(), nil
}

// SQLitePath is the file a sqlite:PATH (or sqlite://PATH) DATABASE_URL
// names; ok is false for a URL of another database.
func SQLitePath(rawURL string) (path string, ok bool) {
	path, ok = strings.CutPrefix(rawURL, "sqlite:")
	return strings.TrimPrefix(path, "//"), ok
}

// sqliteDSN opens PATH (created with its folder if missing) in WAL mode,
// with transactions that take the write lock at BEGIN: SQLite has one
// writer, and a transaction upgrading from read to write could fail instead
// of waiting.
func sqliteDSN(path string) (string, string, error) {
	if path == "" || strings.ContainsAny(path, "?#") {
		return "", "", errors.New("DATABASE_URL: want sqlite:PATH, e.g. sqlite:data/onboard.db")
	}
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return "", "", fmt.Errorf("DATABASE_URL: create the database folder: %w", err)
		}
	}
	pragmas := url.Values{}
	for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		pragmas.Add("_pragma", p)
	}
	pragmas.Set("_txlock", "immediate")
	return "sqlite", "file:" + path + "?" + pragmas.Encode(), nil
}

// redactConnectError keeps the cause of a failed connection and drops the
// connection string pgx may quote in it.
func redactConnectError(err error) error {
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) {
		return connectErr.Unwrap()
	}
	return err
}

func migrate(ctx context.Context, db *sql.DB, logger *slog.Logger) error {
	provider, err := migrations(db)
	if err != nil {
		return err
	}
	results, err := provider.Up(ctx)
	if err != nil {
		return fmt.Errorf("apply migrations: %w", err)
	}
	for _, r := range results {
		logger.Info("migration applied", "source", r.Source.Path, "duration", r.Duration)
	}
	return nil
}

// migrations is the goose provider of db's dialect's migrations.
func migrations(db *sql.DB) (*goose.Provider, error) {
	d := Of(db)
	fsys, err := fs.Sub(migrationFiles, "migrations/"+d.name)
	if err != nil {
		return nil, err
	}
	options := []goose.ProviderOption{goose.WithDisableGlobalRegistry(true)}
	switch d.name {
	case Postgres.name:
		locker, err := lock.NewPostgresSessionLocker()
		if err != nil {
			return nil, err
		}
		options = append(options, goose.WithSessionLocker(locker))
	case MySQL.name:
		locker, err := lock.NewMySQLTableLocker()
		if err != nil {
			return nil, err
		}
		options = append(options, goose.WithLocker(locker))
	}
	provider, err := goose.NewProvider(d.goose, db, fsys, options...)
	if err != nil {
		return nil, fmt.Errorf("migrations: %w", err)
	}
	return provider, nil
}
