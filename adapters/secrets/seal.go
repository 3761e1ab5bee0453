package secrets

import (
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/onboard/onboard/domain"
)

// SealedPrefix starts every value SealValue makes (the personal fields
// of the users read model and of the events): "v1:" and the base64 of the nonce and the sealed value. A
// value without it was written in the clear by an older version.
const SealedPrefix = "v1:"

// UserKeyName is the name a user's key is wrapped under.
func UserKeyName(userID string) string { return "user:" + userID }

// Corrupt is the error of a user whose stored key or field does not open:
// domain.ErrCorruptData, naming the user by its id alone.
func Corrupt(userID, what string) error {
	return fmt.Errorf("user %s: %s does not open: %w", userID, what, domain.ErrCorruptData)
}

// SealValue encrypts value under key with a random nonce and the
// additional data aad: SealedPrefix and the base64 of the nonce and the
// sealed value.
func SealValue(key cipher.AEAD, aad []byte, value string) (string, error) {
	nonce := make([]byte, key.NonceSize(), key.NonceSize()+len(value)+key.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", err
	}
	sealed := key.Seal(nonce, nonce, []byte(value), aad)
	return SealedPrefix + base64.RawStdEncoding.EncodeToString(sealed), nil
}

// OpenValue decrypts what SealValue made with the same aad; false if it
// is not such a value or does not open.
func OpenValue(key cipher.AEAD, aad []byte, stored string) (string, bool) {
	encoded, ok := strings.CutPrefix(stored, SealedPrefix)
	if !ok {
		return "", false
	}
	sealed := make([]byte, base64.RawStdEncoding.DecodedLen(len(encoded)))
	n, err := base64.RawStdEncoding.Decode(sealed, []byte(encoded))
	if err != nil || n < key.NonceSize() {
		return "", false
	}
	nonce, ciphertext := sealed[:key.NonceSize()], sealed[key.NonceSize():n]
	plain, err := key.Open(ciphertext[:0], nonce, ciphertext, aad) // in place
	if err != nil {
		return "", false
	}
	return string(plain), true
}

// IsSealed tells a value SealValue made from one written in the clear.
func IsSealed(stored string) bool { return strings.HasPrefix(stored, SealedPrefix) }

// LabelledAAD is a label, then each part behind its length.
func LabelledAAD(label string, parts ...string) []byte {
	size := len(label)
	for _, part := range parts {
		size += 4 + len(part)
	}
	aad := append(make([]byte, 0, size), label...)
	for _, part := range parts {
		aad = binary.BigEndian.AppendUint32(aad, uint32(len(part))) //nolint:gosec // ids and names are short
		aad = append(aad, part...)
	}
	return aad
}
