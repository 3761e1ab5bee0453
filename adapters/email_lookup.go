package adapters

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"

	"github.com/onboard/onboard/domain"
)

// emailLookup turns an address into the key that finds it at rest, in
// user_emails and in the users read model: the hex HMAC-SHA-256 of its
// normalised form (domain.EmailKey) under the server's EmailLookupSecret,
// so that neither table holds an address, and the same address in any
// letter case has one key.
type emailLookup struct{ key []byte }

func newEmailLookup(key []byte) (emailLookup, error) {
	if len(key) < ServerKeyBytes {
		return emailLookup{}, fmt.Errorf("user store: the email lookup key must be at least %d bytes", ServerKeyBytes)
	}
	return emailLookup{key: slices.Clone(key)}, nil
}

// hash is the lookup key of the address, in any letter case.
func (l emailLookup) hash(address string) string {
	mac := hmac.New(sha256.New, l.key)
	mac.Write([]byte(domain.EmailKey(address)))
	return hex.EncodeToString(mac.Sum(nil))
}
