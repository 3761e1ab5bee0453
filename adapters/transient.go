package adapters

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
	"github.com/wneessen/go-mail"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/onboard/onboard/app/command"
)

// Transient tells whether err is a failure of something the service depends
// on that is likely to pass later: a server down, unreachable, restarting,
// overloaded or busy, a timeout, an SMTP 4xx, a shutdown in progress. Such a
// message is retried until it succeeds instead of going to the poison queue;
// anything else (a malformed message, an SMTP 5xx, a bug) is poisoned once
// its retries are spent.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, command.ErrOverloaded) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	var sendErr *mail.SendError
	if errors.As(err, &sendErr) {
		// A 5xx reply is the server's final word, and a message without a
		// sender or recipients will never do; otherwise, the conversation
		// broke off or the server said "later".
		if sendErr.Reason == mail.ErrGetSender || sendErr.Reason == mail.ErrGetRcpts {
			return false
		}
		return sendErr.IsTemp() || sendErr.ErrorCode() < 500
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "53"),          // insufficient resources
			strings.HasPrefix(pgErr.Code, "57P"),         // shutting down, cannot connect now
			pgErr.Code == "40001", pgErr.Code == "40P01": // serialization failure, deadlock
			return true
		}
		return false
	}
	var connectErr *pgconn.ConnectError
	if errors.As(err, &connectErr) || pgconn.Timeout(err) {
		return true
	}
	if errors.Is(err, mysql.ErrInvalidConn) {
		return true
	}
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) {
		switch myErr.Number {
		case 1040, 1205, 1213: // too many connections, lock wait timeout, deadlock
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
