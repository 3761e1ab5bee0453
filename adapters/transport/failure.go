package transport

import (
	"errors"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
)

// Classify tells which kind of failure a handler's error is, and so what
// becomes of its message: an error that knows its class (an SMTP refusal)
// says it; an overloaded hasher, or a database down, busy or unreachable,
// is an outage; anything else is permanent.
func Classify(err error) app.Failure {
	var classified app.ClassifiedError
	switch {
	case err == nil:
		return app.FailurePermanent
	case errors.As(err, &classified):
		return classified.Failure()
	case errors.Is(err, command.ErrOverloaded), sqldb.Transient(err):
		return app.FailureOutage
	}
	return app.FailurePermanent
}
