package transport

import (
	"errors"

	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/app"
	"github.com/onboard/onboard/app/command"
)

// Classify tells which kind of failure a handler's error is, and so what
// becomes of its message: an error that knows its class (an SMTP refusal)
// says it; an overloaded hasher, a canceled or timed-out context, a
// database down, busy, unreachable or deadlocked (sqldb.Transient), NATS
// unreachable or not answering, a Redis server so (redisTransient), or
// Pub/Sub unreachable, throttling or timing out (googleCloudTransient), or
// an AWS call so (sqsTransient) is an outage; anything else is
// permanent, and poisoned at once.
func Classify(err error) app.Failure {
	var classified app.ClassifiedError
	switch {
	case err == nil:
		return app.FailurePermanent
	case errors.As(err, &classified):
		return classified.Failure()
	case errors.Is(err, command.ErrOverloaded), sqldb.Transient(err):
		return app.FailureOutage
	case natsTransient(err), redisTransient(err), googleCloudTransient(err), sqsTransient(err):
		return app.FailureOutage
	}
	return app.FailurePermanent
}
