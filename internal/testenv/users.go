package testenv

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"log/slog"
	"strings"
	"testing"

	"github.com/onboard/onboard/adapters"
)

// LookupKey is the fixed email lookup key of the stores NewUserStore makes:
// a service takes its own from its server keys.
var LookupKey = bytes.Repeat([]byte{0x5a}, adapters.ServerKeyBytes)

// MasterKeys are the fixed master key of the stores NewUserStore makes,
// which wraps their users' keys, alone.
func MasterKeys(t testing.TB) *adapters.MasterKeys {
	t.Helper()
	key, err := adapters.NewMasterKey(bytes.Repeat([]byte{0xa5}, adapters.MasterKeyBytes))
	if err != nil {
		t.Fatalf("master key: %v", err)
	}
	return adapters.OneMasterKey(key)
}

// NewUserStore returns the users' store of db, looking addresses up under
// LookupKey and wrapping its users' keys under MasterKeys.
func NewUserStore(t testing.TB, db *sql.DB, logger *slog.Logger) *adapters.UserStore {
	t.Helper()
	return NewUserStoreUnder(t, db, logger, MasterKeys(t))
}

// NewUserStoreUnder is NewUserStore with the users' keys wrapped under
// master's current key, and unwrapped under any of them.
func NewUserStoreUnder(t testing.TB, db *sql.DB, logger *slog.Logger, master *adapters.MasterKeys) *adapters.UserStore {
	t.Helper()
	store, err := adapters.NewUserStoreWithConfig(adapters.UserStoreConfig{DB: db, Logger: logger, LookupKey: LookupKey,
		MasterKeys: master})
	if err != nil {
		t.Fatalf("user store: %v", err)
	}
	return store
}

// LookupHash is the key under which a store of NewUserStore finds the
// address, in any letter case: the hex HMAC-SHA-256 of its lower-case
// form under LookupKey.
func LookupHash(address string) string {
	mac := hmac.New(sha256.New, LookupKey)
	mac.Write([]byte(strings.ToLower(address)))
	return hex.EncodeToString(mac.Sum(nil))
}
