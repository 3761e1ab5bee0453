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
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/onboard/onboard/app/command"
)

// Failure is what a handler's failure says about its message.
type Failure int

const (
	// FailurePermanent will fail on every try (a malformed message, an SMTP
	// 5xx, a bug): poisoned once its quick retries are spent.
	FailurePermanent Failure = iota
	// FailureOutage is a dependency that is down, unreachable, restarting,
	// overloaded or busy, a timeout, a shutdown in progress: nothing else
	// could pass either, so the message is redelivered until it does.
	FailureOutage
	// FailureMessage is a temporary refusal of this message only (an SMTP
	// 4xx to one recipient): retried later, off the head of its queue, so
	// that it holds back no other message.
	FailureMessage
)

// Classify tells which kind of failure err is.
func Classify(err error) Failure {
	var smtpErr *SMTPError
	switch {
	case err == nil:
		return FailurePermanent
	case errors.As(err, &smtpErr):
		return smtpErr.failure()
	case Transient(err):
		return FailureOutage
	}
	return FailurePermanent
}

// Transient tells whether err is likely to pass later: an outage, or a
// temporary refusal of one message.
func Transient(err error) bool {
	if err == nil {
		return false
	}
	var smtpErr *SMTPError
	if errors.As(err, &smtpErr) {
		return smtpErr.failure() != FailurePermanent
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
