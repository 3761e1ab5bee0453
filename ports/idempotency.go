package ports

import (
	"crypto/hmac"
	"crypto/sha256"

	"github.com/google/uuid"
)

// IdempotencyKeyHeader makes POST /users safe to retry: the same key with
// the same body answers the same 201 and creates nothing new.
const IdempotencyKeyHeader = "Idempotency-Key"

// idempotentUserID derives the user id of an Idempotency-Key, so that a
// repeated request registers the same user id again, which the registry
// recognizes: the HMAC-SHA256 of the key under the server's secret, cut to
// a UUID of version 8 (custom). Without the secret, knowing a key does not
// tell its user's id.
func idempotentUserID(secret []byte, key string) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(key))
	var id uuid.UUID
	copy(id[:], mac.Sum(nil))
	id[6] = id[6]&0x0f | 0x80 // version 8
	id[8] = id[8]&0x3f | 0x80 // the RFC 9562 variant
	return id.String()
}

// minIdempotencySecret is the shortest secret HTTPConfig accepts.
const minIdempotencySecret = 32

// validIdempotencyKey: 1 to 255 printable ASCII characters.
func validIdempotencyKey(key string) bool {
	if key == "" || len(key) > 255 {
		return false
	}
	for i := 0; i < len(key); i++ {
		if key[i] < 0x21 || key[i] > 0x7e {
			return false
		}
	}
	return true
}
