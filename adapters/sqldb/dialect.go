package sqldb

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is everything that differs between the SQL databases onboard runs
// on. Queries are written once with ? placeholders and rebound per dialect;
// no code outside this type asks which database it is on.
type Dialect struct {
	name  string
	goose goose.Dialect
	// dollarPlaceholders: PostgreSQL's $1, $2… instead of ?.
	dollarPlaceholders bool
	// backtickQuotes: MySQL quotes identifiers with `, the others with ".
	backtickQuotes bool
	// insertOrIgnore makes an INSERT a no-op on a duplicate key.
	insertOrIgnore  func(insert, anyColumn string) string
	uniqueViolation func(err error) bool
	missingTable    func(err error) bool
}

// The dialects.
var (
	Postgres = Dialect{
		name:               "postgres",
		goose:              goose.DialectPostgres,
		dollarPlaceholders: true,
		insertOrIgnore:     onConflictDoNothing,
		uniqueViolation:    pgCode("23505"),
		missingTable:       pgCode("42P01"),
	}
	MySQL = Dialect{
		name:           "mysql",
		goose:          goose.DialectMySQL,
		backtickQuotes: true,
		insertOrIgnore: func(insert, anyColumn string) string {
			// Unlike INSERT IGNORE, this turns no other error into a warning.
			return insert + " ON DUPLICATE KEY UPDATE " + anyColumn + " = " + anyColumn
		},
		uniqueViolation: mysqlNumber(1062),
		missingTable:    mysqlNumber(1146),
	}
	SQLite = Dialect{
		name:           "sqlite",
		goose:          goose.DialectSQLite3,
		insertOrIgnore: onConflictDoNothing,
		uniqueViolation: func(err error) bool {
			var liteErr *sqlite.Error
			return errors.As(err, &liteErr) &&
				(liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
		},
		missingTable: func(err error) bool {
			var liteErr *sqlite.Error
			return errors.As(err, &liteErr) && strings.Contains(liteErr.Error(), "no such table")
		},
	}
)

func pgCode(code string) func(error) bool {
	return func(err error) bool {
		var pgErr *pgconn.PgError
		return errors.As(err, &pgErr) && pgErr.Code == code
	}
}

func mysqlNumber(number uint16) func(error) bool {
	return func(err error) bool {
		var myErr *mysql.MySQLError
		return errors.As(err, &myErr) && myErr.Number == number
	}
}

func onConflictDoNothing(insert, _ string) string { return insert + " ON CONFLICT DO NOTHING" }

// Of tells the dialect from the handle's driver.
func Of(db *sql.DB) Dialect {
	switch db.Driver().(type) {
	case *mysql.MySQLDriver:
		return MySQL
	case *sqlite.Driver:
		return SQLite
	case *stdlib.Driver:
		return Postgres
	}
	// Only Open and the tests make handles, with the drivers above.
	panic(fmt.Sprintf("sqldb: unsupported database driver %T", db.Driver()))
}

// Name is "postgres", "mysql" or "sqlite".
func (d Dialect) Name() string { return d.name }

// Is reports whether d is the other dialect, for code that picks one of
// its own per dialect (such as a watermill-sql schema adapter).
func (d Dialect) Is(other Dialect) bool { return d.name == other.name }

// Rebind turns ? placeholders into the dialect's: $1, $2… on PostgreSQL.
func (d Dialect) Rebind(query string) string {
	if !d.dollarPlaceholders {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Quote quotes an identifier.
func (d Dialect) Quote(name string) string {
	if d.backtickQuotes {
		return "`" + name + "`"
	}
	return `"` + name + `"`
}

// InsertOrIgnore makes an INSERT a no-op on a duplicate key; anyColumn is
// one of its columns (MySQL needs one to "update" to itself).
func (d Dialect) InsertOrIgnore(insert, anyColumn string) string {
	return d.insertOrIgnore(insert, anyColumn)
}

// IsUniqueViolation tells a duplicate key.
func (d Dialect) IsUniqueViolation(err error) bool { return d.uniqueViolation(err) }

// IsMissingTable tells a query on a table that was never created.
func (d Dialect) IsMissingTable(err error) bool { return d.missingTable(err) }

// SingleWriter reports a database that lets one transaction write at a
// time (SQLite): rows commit in the order their keys were given, and a
// transaction already holds the only write lock, so row locks add nothing.
func (d Dialect) SingleWriter() bool { return d.name == SQLite.name }

// LockRows is the clause that locks the rows a SELECT reads until its
// transaction ends, skipping those another holds ("" on a single writer).
func (d Dialect) LockRows(skipLocked bool) string {
	switch {
	case d.SingleWriter():
		return ""
	case skipLocked:
		return " FOR UPDATE SKIP LOCKED"
	}
	return " FOR UPDATE"
}

// Notifies reports a database whose sessions can LISTEN for notifications
// sent at commit (PostgreSQL).
func (d Dialect) Notifies() bool { return d.name == Postgres.name }

// InsertAndSelect is one statement that runs insert, an INSERT that may
// insert nothing, and query, a SELECT of at most one row, in one trip to
// the database: its one row is the number of rows inserted, then query's
// columns (NULL when it finds none). Their ? placeholders stay in that
// order. ok is false on a database without such a statement (MySQL,
// SQLite): run the two apart.
func (d Dialect) InsertAndSelect(insert, query string) (combined string, ok bool) {
	if d.name != Postgres.name {
		return "", false
	}
	return `WITH inserted AS (` + insert + ` RETURNING 1)
		SELECT (SELECT count(*) FROM inserted), found.* FROM (SELECT 1) AS one
		LEFT JOIN (` + query + `) AS found ON true`, true
}
