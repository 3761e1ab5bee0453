package app

// Failure is what a handler's error says about its message, and so what
// becomes of the message.
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

// ClassifiedError is an error that knows its class, such as an adapter's
// error that tells an outage from a refusal of one message.
type ClassifiedError interface {
	error
	Failure() Failure
}
