package domain

import (
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
)

// User is the aggregate of a registered user. Its state is rebuilt from its
// events; it never holds the password or its hash.
type User struct {
	id           string
	name         string
	email        Email
	registeredAt time.Time
	version      int

	pending []Event
}

// Event is a fact recorded in a user's stream.
type Event interface {
	EventName() string
}

// UserRegistered is recorded once, when a user registers. It carries no
// secret: the password hash is stored apart from the event stream.
type UserRegistered struct {
	UserID       string    `json:"user_id"`
	Name         string    `json:"name"`
	Email        string    `json:"email"`
	RegisteredAt time.Time `json:"registered_at"`
}

// UserRegisteredSchemaVersion is the version of UserRegistered's JSON form.
const UserRegisteredSchemaVersion = 1

// EventName is the name under which the event is stored and published.
func (UserRegistered) EventName() string { return "UserRegistered" }

// StreamID is the id of the user whose stream holds the event.
func (e UserRegistered) StreamID() string { return e.UserID }

// NewUser validates a registration and returns the new user with its
// UserRegistered event pending. Every invalid field is reported at once.
func NewUser(id, name, email, password string, now time.Time) (*User, error) {
	v := validation{}
	if parsed, err := uuid.Parse(id); id == "" {
		v.add("id", slugRequired)
	} else if err != nil || parsed.String() != id {
		v.add("id", slugInvalidFormat) // a lower-case UUID, as the API reads it back
	}
	cleanName := parseName(name, v)
	parsedEmail := parseEmail(email, v)
	checkPassword(password, cleanName, email, v)
	if err := v.err(); err != nil {
		return nil, err
	}
	u := &User{}
	u.record(UserRegistered{
		UserID:       id,
		Name:         cleanName,
		Email:        parsedEmail.String(),
		RegisteredAt: now.UTC().Truncate(time.Microsecond),
	})
	return u, nil
}

// UnmarshalUserFromEvents rebuilds a user from its stored stream.
func UnmarshalUserFromEvents(events []Event) (*User, error) {
	if len(events) == 0 {
		return nil, ErrUserNotFound
	}
	u := &User{}
	for _, e := range events {
		if err := u.apply(e); err != nil {
			return nil, err
		}
		u.version++
	}
	return u, nil
}

func (u *User) record(e Event) {
	// apply cannot fail for events this package builds itself.
	_ = u.apply(e)
	u.version++
	u.pending = append(u.pending, e)
}

func (u *User) apply(e Event) error {
	switch e := e.(type) {
	case UserRegistered:
		u.id = e.UserID
		u.name = e.Name
		u.email = Email{address: e.Email}
		u.registeredAt = e.RegisteredAt
	default:
		return fmt.Errorf("user %s: unknown event %T", u.id, e)
	}
	return nil
}

// PendingEvents returns the events recorded since the user was loaded.
func (u *User) PendingEvents() []Event { return slices.Clone(u.pending) }

// Version is the stream version after the pending events.
func (u *User) Version() int { return u.version }

// ID returns the user's id.
func (u *User) ID() string { return u.id }

// Name returns the user's trimmed name.
func (u *User) Name() string { return u.name }

// Email returns the user's address.
func (u *User) Email() Email { return u.email }

// RegisteredAt returns when the user registered.
func (u *User) RegisteredAt() time.Time { return u.registeredAt }
