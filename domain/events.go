package domain

import (
	"encoding/json"
	"time"
)

// Event is a fact recorded in a user's stream.
type Event interface {
	EventName() string
	// StreamID is the id of the user whose stream holds the event: a
	// handler refuses an event about a user its database does not hold.
	StreamID() string
}

// UserRegistered is recorded once, when a user registers. It carries no
// secret: the password hash is stored apart from the event stream.
type UserRegistered struct {
	UserID       string    `json:"user_id" personal:"no"`
	Name         string    `json:"name" personal:"yes"`
	Email        string    `json:"email" personal:"yes"`
	Locale       string    `json:"locale" personal:"no"`
	RegisteredAt time.Time `json:"registered_at"`
}

// UserRegisteredSchemaVersion is the version of UserRegistered's JSON form:
// version 2 added the locale of the user's emails.
const UserRegisteredSchemaVersion = 2

// EventName is the name under which the event is stored and published.
func (UserRegistered) EventName() string { return "UserRegistered" }

// StreamID is the id of the user whose stream holds the event.
func (e UserRegistered) StreamID() string { return e.UserID }

// upcastUserRegisteredV1 gives a version-1 UserRegistered, written before
// users chose a language, the default locale.
func upcastUserRegisteredV1(payload json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, err
	}
	fields["locale"] = json.RawMessage(`"` + DefaultLocale + `"`)
	return json.Marshal(fields)
}

// VerificationEmailRequested is recorded when a user asks for a new
// verification email. Its time sets the link's expiry, so a redelivery
// sends the same link.
type VerificationEmailRequested struct {
	UserID string `json:"user_id" personal:"no"`
	Email  string `json:"email" personal:"yes"`
	// EmailNumber is the address's number (User.EmailNumber), which the
	// link proves.
	EmailNumber int       `json:"email_number"`
	Locale      string    `json:"locale" personal:"no"`
	RequestedAt time.Time `json:"requested_at"`
}

// VerificationEmailRequestedSchemaVersion is the version of
// VerificationEmailRequested's JSON form: version 2 added the address's
// number.
const VerificationEmailRequestedSchemaVersion = 2

// EventName is the name under which the event is stored and published.
func (VerificationEmailRequested) EventName() string { return "VerificationEmailRequested" }

// StreamID is the id of the user whose stream holds the event.
func (e VerificationEmailRequested) StreamID() string { return e.UserID }

// EmailVerified is recorded when a user proves they read their address.
type EmailVerified struct {
	UserID     string    `json:"user_id" personal:"no"`
	Email      string    `json:"email" personal:"yes"`
	VerifiedAt time.Time `json:"verified_at"`
}

// EventName is the name under which the event is stored and published.
func (EmailVerified) EventName() string { return "EmailVerified" }

// StreamID is the id of the user whose stream holds the event.
func (e EmailVerified) StreamID() string { return e.UserID }

// EmailChanged is recorded when a user moves to another address; the new
// one is unverified.
type EmailChanged struct {
	UserID   string `json:"user_id" personal:"no"`
	OldEmail string `json:"old_email" personal:"yes"`
	NewEmail string `json:"new_email" personal:"yes"`
	// EmailNumber is the new address's number (User.EmailNumber), which
	// its verification link proves.
	EmailNumber int       `json:"email_number"`
	Locale      string    `json:"locale" personal:"no"`
	ChangedAt   time.Time `json:"changed_at"`
}

// EmailChangedSchemaVersion is the version of EmailChanged's JSON form:
// version 2 added the new address's number.
const EmailChangedSchemaVersion = 2

// EventName is the name under which the event is stored and published.
func (EmailChanged) EventName() string { return "EmailChanged" }

// StreamID is the id of the user whose stream holds the event.
func (e EmailChanged) StreamID() string { return e.UserID }

// upcastUnknownEmailNumber gives a version-1 EmailChanged or
// VerificationEmailRequested, written before links proved the address's
// number, the number 0. The number it should carry is not in the event
// (the user's stream could tell, but an upcaster reads one event), and
// guessing could revive a link of an address the user left. No address
// has the number 0, so the link a handler makes from such an event never
// verifies: the user asks for a new one, whose event carries the number.
// The aggregate counts its addresses itself, so rebuilding a user from
// such events is unaffected.
func upcastUnknownEmailNumber(payload json.RawMessage) (json.RawMessage, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(payload, &fields); err != nil {
		return nil, err
	}
	fields["email_number"] = json.RawMessage(`0`)
	return json.Marshal(fields)
}

// Events is every event of onboard.
var Events = NewRegistry(
	Register[UserRegistered](UserRegisteredSchemaVersion, map[int]Upcaster{1: upcastUserRegisteredV1}),
	Register[VerificationEmailRequested](VerificationEmailRequestedSchemaVersion,
		map[int]Upcaster{1: upcastUnknownEmailNumber}),
	Register[EmailVerified](1, nil),
	Register[EmailChanged](EmailChangedSchemaVersion, map[int]Upcaster{1: upcastUnknownEmailNumber}),
	Register[PasswordResetRequested](1, nil),
	Register[PasswordChanged](1, nil),
	Register[UserErased](1, nil),
)
