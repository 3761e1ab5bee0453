package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"time"
)

// PasswordResetTTL is how long a password reset link works.
const PasswordResetTTL = time.Hour

// PasswordResetRequested is recorded when someone asks to reset a user's
// password: the link goes to the user's address. Number counts the user's
// requests: only the newest one's link works.
type PasswordResetRequested struct {
	UserID string `json:"user_id" personal:"no"`
	Email  string `json:"email" personal:"yes"`
	// EmailNumber is the address's number (User.EmailNumber), which the
	// link's token binds: an address changed away and back voids it.
	EmailNumber int       `json:"email_number"`
	Locale      string    `json:"locale" personal:"no"`
	RequestedAt time.Time `json:"requested_at"`
	Number      int       `json:"number"`
}

// EventName is the name under which the event is stored and published.
func (PasswordResetRequested) EventName() string { return "PasswordResetRequested" }

// StreamID is the id of the user whose stream holds the event.
func (e PasswordResetRequested) StreamID() string { return e.UserID }

// PasswordChanged is recorded when a user's password is replaced. It
// carries no secret: the hash is stored apart from the event stream.
type PasswordChanged struct {
	UserID    string    `json:"user_id" personal:"no"`
	ChangedAt time.Time `json:"changed_at"`
	// Reason is how the change was proved: "reset", by a link to the
	// address.
	Reason string `json:"reason" personal:"no"`
}

// EventName is the name under which the event is stored and published.
func (PasswordChanged) EventName() string { return "PasswordChanged" }

// StreamID is the id of the user whose stream holds the event.
func (e PasswordChanged) StreamID() string { return e.UserID }

// ReasonPasswordReset is a PasswordChanged's reason after a reset link.
const ReasonPasswordReset = "reset"

// ErrInvalidResetToken is returned for a reset link that is not the
// newest one of the user's current address, was used, or was voided by a
// change of password.
var ErrInvalidResetToken = &Error{Kind: KindInvalid, Code: "invalid-token",
	Message: "this password reset link is not valid: ask for a new one with POST /password-resets"}

// ErrResetExpired is returned for a reset link past its expiry.
var ErrResetExpired = &Error{Kind: KindGone, Code: "token-expired",
	Message: "this password reset link has expired: ask for a new one with POST /password-resets"}

// ResetKey signs password reset tokens: a token is its expiry and an
// HMAC-SHA256 of the user id, the address's key and number, the request's
// number and that expiry. It is never stored; a newer request, a change of address or
// of password voids it. At least 32 random bytes, the same for every
// replica.
type ResetKey []byte

// Token is the token of the user's numberth reset request, sent to the
// address whose key is emailKey and number emailNumber, expiring at
// expires.
func (k ResetKey) Token(userID, emailKey string, emailNumber, number int, expires time.Time) string {
	raw := make([]byte, 8, 8+verificationMACBytes)
	binary.BigEndian.PutUint64(raw, uint64(expires.Unix())) //nolint:gosec // a time after 1970
	raw = append(raw, k.mac(userID, emailKey, emailNumber, number, raw[:8])...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// check returns nil when token is k's for the request, not expired and
// not expiring later than PasswordResetTTL from now.
func (k ResetKey) check(userID, emailKey string, emailNumber, number int, token string, now time.Time) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != 8+verificationMACBytes || len(k) < MinVerificationKeyBytes {
		return ErrInvalidResetToken
	}
	if !hmac.Equal(raw[8:], k.mac(userID, emailKey, emailNumber, number, raw[:8])) {
		return ErrInvalidResetToken
	}
	expires := int64(binary.BigEndian.Uint64(raw[:8])) //nolint:gosec // signed above, so ours
	switch {
	case now.Unix() >= expires:
		return ErrResetExpired
	case expires > now.Add(PasswordResetTTL+time.Minute).Unix():
		return ErrInvalidResetToken // no link of ours lasts that long
	}
	return nil
}

func (k ResetKey) mac(userID, emailKey string, emailNumber, number int, expires []byte) []byte {
	h := hmac.New(sha256.New, k)
	for _, part := range []string{"reset-password", userID, emailKey, strconv.Itoa(emailNumber), strconv.Itoa(number)} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part))) //nolint:gosec // short
		h.Write(n[:])
		h.Write([]byte(part))
	}
	h.Write(expires)
	return h.Sum(nil)[:verificationMACBytes]
}

// RequestPasswordReset records PasswordResetRequested: a link to the
// user's address that voids every earlier one.
func (u *User) RequestPasswordReset(now time.Time) {
	u.record(PasswordResetRequested{UserID: u.id, Email: u.email.String(), EmailNumber: u.emailNumber, Locale: u.locale,
		RequestedAt: utc(now), Number: u.resetRequests + 1})
}

// ResetPassword records PasswordChanged if token is the link of the
// user's newest reset request, to its current address, unused and not
// expired; and EmailVerified if the address was not: the link was read
// there. The password, already checked against the policy, is stored by
// the caller.
func (u *User) ResetPassword(key ResetKey, token string, now time.Time) error {
	if u.resetRequests == 0 || u.resetUsed || u.resetEmailNumber != u.emailNumber || u.emailNumber == 0 {
		return ErrInvalidResetToken
	}
	if err := key.check(u.id, u.email.Key(), u.emailNumber, u.resetRequests, token, now); err != nil {
		return err
	}
	u.record(PasswordChanged{UserID: u.id, ChangedAt: utc(now), Reason: ReasonPasswordReset})
	if !u.emailVerified {
		u.record(EmailVerified{UserID: u.id, Email: u.email.String(), VerifiedAt: utc(now)})
	}
	return nil
}
