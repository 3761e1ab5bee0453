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
	id            string
	name          string
	email         Email
	emailVerified bool
	// emailNumber is the number of the current address: 1 at registration,
	// one more at each change.
	emailNumber  int
	locale       string
	registeredAt time.Time
	// lastVerificationEmail is when the newest verification link was
	// sent: at registration, at an email change, or on request.
	lastVerificationEmail time.Time
	// resetRequests counts the password reset requests;
	// resetEmailNumber is the number of the address the newest went to,
	// resetUsed whether a password change came after it.
	resetRequests    int
	resetEmailNumber int
	resetUsed        bool
	version          int
	erased           bool

	pending []Event
}

// NewUser validates a registration and returns the new user with its
// UserRegistered event pending. Every invalid field is reported at once;
// an empty locale is DefaultLocale.
func NewUser(id, name, email, password, locale string, now time.Time) (*User, error) {
	v := validation{}
	if parsed, err := uuid.Parse(id); id == "" {
		v.add("id", slugRequired)
	} else if err != nil || parsed.String() != id {
		v.add("id", slugInvalidFormat) // a lower-case UUID, as the API reads it back
	}
	cleanName := parseName(name, v)
	parsedEmail := parseEmail(email, v)
	checkPassword(password, cleanName, email, v)
	locale = parseLocale(locale, v)
	if err := v.err(); err != nil {
		return nil, err
	}
	u := &User{}
	u.record(UserRegistered{
		UserID:       id,
		Name:         cleanName,
		Email:        parsedEmail.String(),
		Locale:       locale,
		RegisteredAt: utc(now),
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
	// apply fails only for an event it has no case for: a new event type
	// recorded before apply learned it, a bug that must not go unseen.
	if err := u.apply(e); err != nil {
		panic(err)
	}
	u.version++
	u.pending = append(u.pending, e)
}

func (u *User) apply(e Event) error {
	switch e := e.(type) {
	case UserRegistered:
		u.id = e.UserID
		u.name = e.Name
		u.email = Email{address: e.Email}
		u.emailNumber = FirstEmailNumber
		u.locale = e.Locale
		u.registeredAt = e.RegisteredAt
		u.lastVerificationEmail = e.RegisteredAt
	case VerificationEmailRequested:
		u.lastVerificationEmail = e.RequestedAt
	case EmailVerified:
		u.emailVerified = true
	case EmailChanged:
		u.email = Email{address: e.NewEmail}
		// Counted here, not read from the event: events of version 1 do
		// not carry the number.
		u.emailNumber++
		u.emailVerified = false
		u.lastVerificationEmail = e.ChangedAt
	case PasswordResetRequested:
		u.resetRequests++
		u.resetEmailNumber = e.EmailNumber
		u.resetUsed = false
	case PasswordChanged:
		u.resetUsed = true
	case UserErased:
		u.erased = true
		u.name, u.email, u.emailVerified = "", Email{}, false
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

// EmailNumber is the number of the user's current address: 1 at
// registration, one more at each change (TokenSubject).
func (u *User) EmailNumber() int { return u.emailNumber }

// EmailVerified reports whether the user proved they read their current
// address.
func (u *User) EmailVerified() bool { return u.emailVerified }

// Locale is the language of the user's emails.
func (u *User) Locale() string { return u.locale }

// RegisteredAt returns when the user registered.
func (u *User) RegisteredAt() time.Time { return u.registeredAt }
