package app

// Failure is what a handler's error says about its message, and so what
// becomes of the message. Only an outage is retried at once, in the
// handler: the other two are this message's own, and each leaves the head
// of its queue after one attempt, so that no other message waits behind it.
type Failure int

const (
	// FailurePermanent will fail on every try (a malformed message, an SMTP
	// 5xx to its recipient or its data, a bug), and so does an error that
	// knows no class: poisoned at once, with the error as its reason. An
	// error that may pass on a retry must say so: a database's is an outage
	// when sqldb.Transient says it is, and an adapter's error that tells
	// its class implements ClassifiedError.
	FailurePermanent Failure = iota
	// FailureOutage is a dependency that is down, unreachable, restarting,
	// overloaded or busy, a timeout, a shutdown in progress: nothing else
	// could pass either, so the message is retried at once for a few
	// seconds, then nacked and redelivered until it passes.
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
