// Package adapters holds everything that talks to the outside: the event
// store and outbox, read models, the pub/sub transports, the mailers and the
// password hasher.
package adapters

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
)

//go:embed migrations
var migrations embed.FS

// OpenDatabase connects to the database named by a postgres:// URL, checks
// that it answers within the context's deadline and applies the migrations.
func OpenDatabase(ctx context.Context, rawURL string, logger *slog.Logger) (*sql.DB, error) {
	dsn, err := postgresDSN(rawURL)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.SetMaxOpenConns(20)
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

// postgresDSN checks the URL and adds a connect timeout when it has none,
// so that an unreachable server fails fast instead of hanging.
func postgresDSN(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return "", errors.New("DATABASE_URL: want postgres://user@host:port/database")
	}
	q := u.Query()
	if q.Get("connect_timeout") == "" {
		q.Set("connect_timeout", "5")
	}
	u.RawQuery = q.Encode()
	return u.String(), nil
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
	fsys, err := fs.Sub(migrations, "migrations/postgres")
	if err != nil {
		return err
	}
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return err
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, fsys,
		goose.WithSessionLocker(locker), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations: %w", err)
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

// isUniqueViolation reports whether err is PostgreSQL's unique_violation on
// the named constraint ("" for any).
func isUniqueViolation(err error, constraint string) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505" &&
		(constraint == "" || strings.EqualFold(pgErr.ConstraintName, constraint))
}
