// Package domain holds onboard's business rules: the User aggregate, its
// events, value objects and the errors they return. It imports no
// infrastructure.
package domain

import (
	"errors"
	"sort"
	"strings"
	"time"
)

// Kind classifies a domain error so that a port can map it to a status.
type Kind int

const (
	// KindInvalid is input that breaks a rule.
	KindInvalid Kind = iota + 1
	// KindConflict is input that clashes with existing state.
	KindConflict
	// KindNotFound is a reference to something that does not exist.
	KindNotFound
	// KindGone is a reference to something that no longer holds.
	KindGone
	// KindForbidden is a request its sender may not make.
	KindForbidden
	// KindStale is a request made against an older state.
	KindStale
	// KindTooMany is a request made too soon after others; RetryAfter
	// says when to try again.
	KindTooMany
	// KindUnauthenticated is a request without a valid credential.
	KindUnauthenticated
	// KindCorrupt is stored data that does not open: altered, or under a
	// key that is not its own.
	KindCorrupt
)

// Error is a domain error: a kind, a stable code for clients, a message and,
// for invalid input, one slug per offending field.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Fields  map[string]string
	// RetryAfter is, for KindTooMany, the wait before a new try.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Message
	}
	parts := make([]string, 0, len(e.Fields))
	for field, slug := range e.Fields {
		parts = append(parts, field+": "+slug)
	}
	sort.Strings(parts)
	return e.Message + " (" + strings.Join(parts, ", ") + ")"
}

// ErrEmailTaken is returned when another user already holds the email.
var ErrEmailTaken = &Error{Kind: KindConflict, Code: "email-taken", Message: "this email is already registered"}

// ErrUserExists is returned when a user id is reused for another registration.
var ErrUserExists = &Error{Kind: KindConflict, Code: "user-exists", Message: "a user with this id already exists"}

// ErrIdempotencyKeyReused is returned when a request repeats an earlier
// one's Idempotency-Key (or a command its user id) with another body.
var ErrIdempotencyKeyReused = &Error{Kind: KindInvalid, Code: "idempotency-key-reused",
	Message: "this Idempotency-Key was already used with another request"}

// ErrCorruptData is a user whose stored personal data or key does not
// decrypt: that user's data was altered at rest.
var ErrCorruptData = &Error{Kind: KindCorrupt, Code: "corrupt-data",
	Message: "this user's stored data is corrupt and cannot be read"}

// ErrUserNotFound is returned for an unknown user id.
var ErrUserNotFound = &Error{Kind: KindNotFound, Code: "user-not-found", Message: "no user has this id"}

// ErrInvalidToken is returned for a verification token that is not the
// one of the user's address.
var ErrInvalidToken = &Error{Kind: KindInvalid, Code: "invalid-token", Message: "this verification token is not valid"}

// ErrTokenExpired is returned for a verification token past its expiry.
var ErrTokenExpired = &Error{Kind: KindGone, Code: "token-expired",
	Message: "this verification link has expired: ask for a new one with POST /users/{id}/email-verification/resend"}

// ErrAlreadyVerified is returned when a verified user asks for a
// verification email.
var ErrAlreadyVerified = &Error{Kind: KindConflict, Code: "already-verified", Message: "this address is already verified"}

// ErrWrongPassword is returned when a change is asked with a password that
// is not the user's.
var ErrWrongPassword = &Error{Kind: KindForbidden, Code: "wrong-password", Message: "the password is not this user's"}

// ErrUnauthenticated is returned for a missing, unknown, expired or ended
// session.
var ErrUnauthenticated = &Error{Kind: KindUnauthenticated, Code: "unauthenticated",
	Message: "send Authorization: Bearer <token> of a session of this user (POST /sessions)"}

// ErrInvalidCredentials is returned to a sign-in whose address or password
// is wrong: the same answer for both, so that it does not tell which
// addresses are registered.
var ErrInvalidCredentials = &Error{Kind: KindUnauthenticated, Code: "invalid-credentials",
	Message: "this email and password do not match an account"}

// ErrVersionMismatch is returned when a change is asked against a version
// of the user that is no longer the current one.
var ErrVersionMismatch = &Error{Kind: KindStale, Code: "version-mismatch",
	Message: "the user changed since this version: read it again and retry"}

// TooManyRequests is the error of a request to retry after wait.
func TooManyRequests(message string, wait time.Duration) *Error {
	return &Error{Kind: KindTooMany, Code: "too-many-requests", Message: message, RetryAfter: wait}
}

// IsKind reports whether err is a domain error of the given kind.
func IsKind(err error, kind Kind) bool {
	var de *Error
	return errors.As(err, &de) && de.Kind == kind
}

// validation collects field problems and turns them into one error.
type validation map[string]string

func (v validation) add(field, slug string) {
	if _, seen := v[field]; !seen {
		v[field] = slug
	}
}

func (v validation) err() error {
	if len(v) == 0 {
		return nil
	}
	return &Error{Kind: KindInvalid, Code: "validation-failed", Message: "some fields are invalid", Fields: v}
}
