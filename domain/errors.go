// Package domain holds onboard's business rules: the User aggregate, its
// events, value objects and the errors they return. It imports no
// infrastructure.
package domain

import (
	"errors"
	"sort"
	"strings"
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
)

// Error is a domain error: a kind, a stable code for clients, a message and,
// for invalid input, one slug per offending field.
type Error struct {
	Kind    Kind
	Code    string
	Message string
	Fields  map[string]string
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

// ErrUserNotFound is returned for an unknown user id.
var ErrUserNotFound = &Error{Kind: KindNotFound, Code: "user-not-found", Message: "no user has this id"}

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
