package domain

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// VerificationKey signs email-verification tokens. A token is its expiry
// and an HMAC-SHA256 of the user id, the address's key and that expiry, so
// it is never stored, the same link is made again for the same email
// (a redelivery sends the link the user already has), and a change of
// address voids every earlier link. The key is at least 32 random bytes,
// the same for every replica.
type VerificationKey []byte

// MinVerificationKeyBytes is the shortest key accepted.
const MinVerificationKeyBytes = 32

// verificationMACBytes is the part of the HMAC a token carries: 192 bits.
const verificationMACBytes = 24

// Token is the token proving the address to whom reads it before expires.
func (k VerificationKey) Token(userID, emailKey string, expires time.Time) string {
	raw := make([]byte, 8, 8+verificationMACBytes)
	binary.BigEndian.PutUint64(raw, uint64(expires.Unix()))
	raw = append(raw, k.mac(userID, emailKey, raw[:8])...)
	return base64.RawURLEncoding.EncodeToString(raw)
}

// Check returns ErrInvalidToken unless token is one of k's for the user's
// address, and ErrTokenExpired if it is but has expired.
func (k VerificationKey) Check(userID, emailKey, token string, now time.Time) error {
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != 8+verificationMACBytes || len(k) < MinVerificationKeyBytes {
		return ErrInvalidToken
	}
	if !hmac.Equal(raw[8:], k.mac(userID, emailKey, raw[:8])) {
		return ErrInvalidToken
	}
	expires := int64(binary.BigEndian.Uint64(raw[:8])) //nolint:gosec // signed above, so ours
	if now.Unix() >= expires {
		return ErrTokenExpired
	}
	return nil
}

func (k VerificationKey) mac(userID, emailKey string, expires []byte) []byte {
	h := hmac.New(sha256.New, k)
	for _, part := range [][]byte{[]byte("verify-email"), []byte(userID), []byte(emailKey)} {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(part))) //nolint:gosec // ids and addresses are short
		h.Write(n[:])
		h.Write(part)
	}
	h.Write(expires)
	return h.Sum(nil)[:verificationMACBytes]
}
