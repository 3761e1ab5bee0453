package domain

import "time"

// UserErased is recorded when a user is erased (GDPR art. 17). It carries
// no personal data: erasing destroys the user's key, under which the
// personal fields of the user's earlier events are encrypted, so that they
// no longer open anywhere they were stored or published.
type UserErased struct {
	UserID   string    `json:"user_id" personal:"no"`
	ErasedAt time.Time `json:"erased_at"`
	// By is who asked: ErasedByUser or ErasedByOperator.
	By string `json:"by" personal:"no"`
}

// EventName is the name under which the event is stored and published.
func (UserErased) EventName() string { return "UserErased" }

// StreamID is the id of the user whose stream holds the event.
func (e UserErased) StreamID() string { return e.UserID }

// Who asked for an erasure.
const (
	ErasedByUser     = "user"
	ErasedByOperator = "operator"
)

// ErrUserErased is returned for a user who was erased: nothing of it can
// be read or changed any more.
var ErrUserErased = &Error{Kind: KindGone, Code: "user-erased", Message: "this user was erased"}

// Erase records UserErased, asked for by ErasedByUser or
// ErasedByOperator: ErrUserErased if the user was erased already.
func (u *User) Erase(by string, now time.Time) error {
	if u.erased {
		return ErrUserErased
	}
	u.record(UserErased{UserID: u.id, ErasedAt: utc(now), By: by})
	return nil
}

// Erased reports whether the user was erased; an erased user has no name
// or address.
func (u *User) Erased() bool { return u.erased }
