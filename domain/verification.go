package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// VerificationKey signs email-verification tokens. A token is its expiry
// and an HMAC-SHA256 of its subject (the user id, the address's key and
// the address's number) and that expiry, so it is never stored, the same
// link is made again for the same email (a redelivery sends the link the
// user already has), and a change of address voids every earlier link for
// good, even one of an address the user later moves back to. The key is
// at least 32 random bytes, the same for every replica.
type VerificationKey []byte

// MinVerificationKeyBytes is the shortest key accepted.
const MinVerificationKeyBytes = 32

// verificationMACBytes is the part of the HMAC a token carries: 192 bits.
const verificationMACBytes = 24

// MaxTokenClockSkew is how much further ahead than the TTL a token's
// expiry may lie: the clock of the replica that signed it may run ahead
// of the one that checks it.
const MaxTokenClockSkew = 5 * time.Minute

// FirstEmailNumber is the number of the address a user registers with.
const FirstEmailNumber = 1

// TokenSubject is what a verification token proves: that the user reads
// the address of this key, as the user's address of this number.
type TokenSubject struct {
	UserID   string
	EmailKey string
	// EmailNumber counts the user's addresses: FirstEmailNumber at
	// registration, one more at each EmailChanged. It never repeats for a
	// user, so the links of an address the user left stay void if they
	// come back to it. No address has the number 0: a token for it never
	// verifies.
	EmailNumber int
}

// Token is the token proving the subject to whom reads it before expires.
func (k VerificationKey) Token(s TokenSubject, expires time.Time) string {
	raw := make([]byte, 8, 8+verificationMACBytes)
	binary.BigEndian.PutUint64(raw, uint64(expires.Unix()))
	raw = append(raw, k.mac(s, raw[:8])...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Check returns ErrInvalidToken unless token is one of k's for the
// subject, expiring at most ttl (and MaxTokenClockSkew) after now, and
// ErrTokenExpired if it is but has expired. A token whose expiry lies
// further ahead was not made by this service's links, whatever signed it:
// it is refused.
func (k VerificationKey) Check(s TokenSubject, token string, now time.Time, ttl time.Duration) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != 8+verificationMACBytes || len(k) < MinVerificationKeyBytes ||
		s.EmailNumber < FirstEmailNumber || ttl <= 0 {
		return ErrInvalidToken
	}
	if !hmac.Equal(raw[8:], k.mac(s, raw[:8])) {
		return ErrInvalidToken
	}
	expires := int64(binary.BigEndian.Uint64(raw[:8])) //nolint:gosec // signed above, so ours
	if expires > now.Add(ttl+MaxTokenClockSkew).Unix() {
		return ErrInvalidToken
	}
	if now.Unix() >= expires {
		return ErrTokenExpired
	}
	return nil
}

func (k VerificationKey) mac(s TokenSubject, expires []byte) []byte {
	h := hmac.New(sha256.New, k)
	for _, part := range [][]byte{[]byte("verify-email"), []byte(s.UserID), []byte(s.EmailKey)} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part))) //nolint:gosec // ids and addresses are short
		h.Write(n[:])
		h.Write(part)
	}
	var number [8]byte
	binary.BigEndian.PutUint64(number[:], uint64(s.EmailNumber)) //nolint:gosec // Check refuses a negative one
	h.Write(number[:])
	h.Write(expires)
	return h.Sum(nil)[:verificationMACBytes]
}
