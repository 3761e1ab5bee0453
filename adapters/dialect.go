package adapters

import (
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"

	wsql "github.com/ThreeDotsLabs/watermill-sql/v4/pkg/sql"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// dialect is what differs between the SQL databases onboard runs on. Queries
// are written once with ? placeholders and rebound per dialect.
type dialect struct {
	name  string
	goose goose.Dialect
	// dollarPlaceholders: PostgreSQL's $1, $2… instead of ?.
	dollarPlaceholders bool
	// insertOrIgnore makes an INSERT a no-op on a duplicate key.
	insertOrIgnore  func(insert, anyColumn string) string
	uniqueViolation func(err error) bool
	schema          wsql.SchemaAdapter
	// offsets is the offsets adapter of one consumer group.
	offsets func(group string) wsql.OffsetsAdapter
	// subscriberBeginner gives watermill-sql subscribers their transactions.
	subscriberBeginner func(db *sql.DB) wsql.Beginner
}

var (
	postgresDialect = dialect{
		name:               "postgres",
		goose:              goose.DialectPostgres,
		dollarPlaceholders: true,
		insertOrIgnore:     onConflictDoNothing,
		uniqueViolation: func(err error) bool {
			var pgErr *pgconn.PgError
			return errors.As(err, &pgErr) && pgErr.Code == "23505"
		},
		schema:             QueueSchema{},
		offsets:            queueOffsets(QueueSchema{}),
		subscriberBeginner: stdBeginner,
	}
	mysqlDialect = dialect{
		name:  "mysql",
		goose: goose.DialectMySQL,
		insertOrIgnore: func(insert, anyColumn string) string {
			// Unlike INSERT IGNORE, this turns no other error into a warning.
			return insert + " ON DUPLICATE KEY UPDATE " + anyColumn + " = " + anyColumn
		},
		uniqueViolation: func(err error) bool {
			var myErr *mysql.MySQLError
			return errors.As(err, &myErr) && myErr.Number == 1062
		},
		schema:             QueueSchema{MySQL: true},
		offsets:            queueOffsets(QueueSchema{MySQL: true}),
		subscriberBeginner: stdBeginner,
	}
	sqliteDialect = dialect{
		name:           "sqlite",
		goose:          goose.DialectSQLite3,
		insertOrIgnore: onConflictDoNothing,
		uniqueViolation: func(err error) bool {
			var liteErr *sqlite.Error
			return errors.As(err, &liteErr) &&
				(liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
		},
		schema:             SQLiteSchema{},
		offsets:            func(string) wsql.OffsetsAdapter { return SQLiteOffsetsAdapter{} },
		subscriberBeginner: sqliteBeginner,
	}
)

func queueOffsets(schema QueueSchema) func(group string) wsql.OffsetsAdapter {
	return func(group string) wsql.OffsetsAdapter {
		return QueueOffsetsAdapter{Schema: schema, ConsumerGroup: group}
	}
}

func onConflictDoNothing(insert, _ string) string { return insert + " ON CONFLICT DO NOTHING" }

func stdBeginner(db *sql.DB) wsql.Beginner { return wsql.BeginnerFromStdSQL(db) }

func sqliteBeginner(db *sql.DB) wsql.Beginner { return sqliteSubscriberBeginner{db} }

// dialectOf tells the dialect from the handle's driver.
func dialectOf(db *sql.DB) dialect {
	switch db.Driver().(type) {
	case *mysql.MySQLDriver:
		return mysqlDialect
	case *sqlite.Driver:
		return sqliteDialect
	case *stdlib.Driver:
		return postgresDialect
	}
	// Only OpenDatabase and the tests make handles, with the drivers above.
	panic(fmt.Sprintf("adapters: unsupported database driver %T", db.Driver()))
}

// rebind turns ? placeholders into the dialect's.
func (d dialect) rebind(query string) string {
	if !d.dollarPlaceholders {
		return query
	}
	return dollarPlaceholders(query)
}

// dollarPlaceholders numbers ? placeholders as PostgreSQL's $1, $2…
func dollarPlaceholders(query string) string {
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

// Dialect names the SQL dialect of the handle's driver: "postgres", "mysql"
// or "sqlite".
func Dialect(db *sql.DB) string { return dialectOf(db).name }

// Rebind turns the query's ? placeholders into those of the handle's
// dialect: $1, $2… on PostgreSQL, unchanged elsewhere.
func Rebind(db *sql.DB, query string) string { return dialectOf(db).rebind(query) }

// MessagesTable is the unquoted name of the table that holds a topic's
// messages on db's SQL transport.
func MessagesTable(db *sql.DB, topic string) string {
	if dialectOf(db).name == sqliteDialect.name {
		return "watermill_" + topic
	}
	return "watermill_queue_" + topic
}
