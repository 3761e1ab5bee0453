package domain

import (
	"time"
)

// VerificationEmailInterval is the least time between two verification
// emails of one user.
const VerificationEmailInterval = time.Minute

// VerifyEmail records EmailVerified if token is the key's token of the
// user's current address, by its number too, and has not expired; a token
// expiring more than ttl (VERIFY_TTL) ahead is refused. A valid token of a
// verified user records nothing: the same link may be followed twice.
func (u *User) VerifyEmail(key VerificationKey, ttl time.Duration, token string, now time.Time) error {
	if err := key.Check(u.TokenSubject(), token, now, ttl); err != nil {
		return err
	}
	if u.emailVerified {
		return nil
	}
	u.record(EmailVerified{UserID: u.id, Email: u.email.String(), VerifiedAt: utc(now)})
	return nil
}

// RequestVerificationEmail records VerificationEmailRequested, whose
// handler sends a new link, at most once per VerificationEmailInterval.
func (u *User) RequestVerificationEmail(now time.Time) error {
	if u.emailVerified {
		return ErrAlreadyVerified
	}
	if wait := u.lastVerificationEmail.Add(VerificationEmailInterval).Sub(now); wait > 0 {
		return TooManyRequests("a verification email was sent less than a minute ago", wait)
	}
	u.record(VerificationEmailRequested{UserID: u.id, Email: u.email.String(), EmailNumber: u.emailNumber, Locale: u.locale,
		RequestedAt: utc(now)})
	return nil
}

// ChangeEmail records EmailChanged to a new, valid address, which starts
// unverified. The same address in other letter case is no change.
func (u *User) ChangeEmail(email string, now time.Time) error {
	v := validation{}
	parsed := parseEmail(email, v)
	if err := v.err(); err != nil {
		return err
	}
	if parsed.Key() == u.email.Key() {
		v.add(fieldEmail, slugUnchanged)
		return v.err()
	}
	u.record(EmailChanged{UserID: u.id, OldEmail: u.email.String(), NewEmail: parsed.String(),
		EmailNumber: u.emailNumber + 1, Locale: u.locale, ChangedAt: utc(now)})
	return nil
}

// TokenSubject is what a verification link of the user's current address
// proves.
func (u *User) TokenSubject() TokenSubject {
	return TokenSubject{UserID: u.id, EmailKey: u.email.Key(), EmailNumber: u.emailNumber}
}

// utc is a time as events store it: UTC, to the microsecond every database
// keeps.
func utc(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
