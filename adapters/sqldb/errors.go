package sqldb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Transient tells whether err is a failure of the database, or of the way
// to it, that is likely to pass later: a server down, unreachable,
// restarting, overloaded or busy, a timeout (of the statement, or of a lock
// it waited for), a deadlock, a statement or connection the server canceled,
// a stop in progress. A syntax error, a missing table or a broken
// constraint is not. A handler's error that is not transient poisons its
// message at once: what may pass on a retry belongs here.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "40001", "40P01": // serialization failure, deadlock
			return true
		case "55P03", "57014": // lock_timeout; statement_timeout, or canceled by an operator
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") || // connection exception
			strings.HasPrefix(pgErr.Code, "53") || // insufficient resources
			strings.HasPrefix(pgErr.Code, "57P") // shutting down, cannot connect now
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.Timeout(err) ||
		errors.Is(err, pgconn.ErrConnClosed) { // a connection pgx closed as its socket went away
		return true
	}
	if errors.Is(err, mysql.ErrInvalidConn) {
		return true
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1040, 1203: // too many connections, to the server or for the user
			return true
		case 1205, 1213: // lock wait timeout, deadlock
			return true
		case 1053, 4031: // server shutdown in progress; connection closed after its inactivity timeout
			return true
		case 1317, 1927: // query interrupted, connection killed (an operator's KILL)
			return true
		case 1969, 3024: // statement timeout: MariaDB's max_statement_time, MySQL's max_execution_time
			return true
		}
		return false
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		code := liteErr.Code() & 0xff // the primary result code
		return code == sqlite3.SQLITE_BUSY || code == sqlite3.SQLITE_LOCKED
	}
	return false
}
