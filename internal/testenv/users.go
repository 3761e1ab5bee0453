package testenv

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/google/uuid"
	"golang.org/x/crypto/bcrypt"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/transport"
	"github.com/onboard/onboard/adapters/userdb"
	"github.com/onboard/onboard/adapters/watermillsql"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
)

// LookupKey is the fixed email lookup key of the stores NewUserStore makes:
// a service takes its own from its server keys.
var LookupKey = bytes.Repeat([]byte{0x5a}, secrets.ServerKeyBytes)

// MasterKeys are the fixed master key of the stores NewUserStore makes,
// which wraps their users' keys, alone.
func MasterKeys(t testing.TB) *secrets.MasterKeys {
	t.Helper()
	key, err := secrets.NewMasterKey(bytes.Repeat([]byte{0xa5}, secrets.MasterKeyBytes))
	if err != nil {
		t.Fatalf("master key: %v", err)
	}
	return secrets.OneMasterKey(key)
}

// NewUserStore returns the users' store of db, looking addresses up under
// LookupKey and wrapping its users' keys under MasterKeys.
func NewUserStore(t testing.TB, db *sql.DB, logger *slog.Logger) *userdb.UserStore {
	t.Helper()
	return NewUserStoreUnder(t, db, logger, MasterKeys(t))
}

// NewUserStoreUnder is NewUserStore with the users' keys wrapped under
// master's current key, and unwrapped under any of them.
func NewUserStoreUnder(t testing.TB, db *sql.DB, logger *slog.Logger, master *secrets.MasterKeys) *userdb.UserStore {
	t.Helper()
	store, err := userdb.NewUserStoreWithConfig(userdb.UserStoreConfig{DB: db, Logger: logger, LookupKey: LookupKey,
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

// StoreDB is a migrated database of the backend with the outbox table the
// forwarder's subscriber would create and the users read model prepared.
func StoreDB(t testing.TB, backend Backend) *DB {
	t.Helper()
	db := MigratedDB(t, backend)
	outbox, err := watermillsql.NewSQLSubscriber(db.DB, transport.OutboxGroup, watermill.NopLogger{})
	if err != nil {
		t.Fatalf("outbox subscriber: %v", err)
	}
	if err := errors.Join(outbox.SubscribeInitialize(transport.OutboxTopic), outbox.Close()); err != nil {
		t.Fatalf("outbox table: %v", err)
	}
	if _, err := NewUserStore(t, db.DB, slog.New(slog.DiscardHandler)).ReadModel().Prepare(Context(t)); err != nil {
		t.Fatalf("users read model: %v", err)
	}
	return db
}

// StoredPayload is the payload of the user's event at version, as stored.
func StoredPayload(t testing.TB, db *DB, userID string, version int) map[string]any {
	t.Helper()
	var payload []byte
	if err := db.QueryRowContext(Context(t), db.Rebind(`SELECT payload FROM events WHERE stream_id = ? AND stream_version = ?`),
		userID, version).Scan(&payload); err != nil {
		t.Fatalf("event %d of user %s: %v", version, userID, err)
	}
	var fields map[string]any
	if err := json.Unmarshal(payload, &fields); err != nil {
		t.Fatalf("event %d of user %s: %v", version, userID, err)
	}
	return fields
}

// StoredRegistration is the user's UserRegistered at version as stored,
// its personal fields sealed, and its event id.
func StoredRegistration(t testing.TB, db *DB, userID string, version int) (*domain.UserRegistered, string) {
	t.Helper()
	payload, err := json.Marshal(StoredPayload(t, db, userID, version))
	var e domain.UserRegistered
	if err == nil {
		err = json.Unmarshal(payload, &e)
	}
	var eventID string
	if err == nil {
		err = db.QueryRowContext(Context(t), db.Rebind(`SELECT event_id FROM events WHERE stream_id = ? AND stream_version = ?`),
			userID, version).Scan(&eventID)
	}
	if err != nil {
		t.Fatalf("event %d of user %s: %v", version, userID, err)
	}
	return &e, eventID
}

// RegisteredAt is when RegisterUser's users registered.
var RegisteredAt = time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.FixedZone("CEST", 2*60*60))

// RegisterUser registers a user of the address in store, named Ada
// Lovelace, at RegisteredAt, and returns its id.
func RegisterUser(t testing.TB, store *userdb.UserStore, email string) string {
	t.Helper()
	id := uuid.NewString()
	RegisterUserAs(t, store, id, "Ada Lovelace", email)
	return id
}

// RegisterUserAs registers the user of the id, name and address in
// store, at RegisteredAt.
func RegisterUserAs(t testing.TB, store *userdb.UserStore, id, name, email string) {
	t.Helper()
	const password = "correct horse battery staple"
	user, err := domain.NewUser(id, name, email, password, "", RegisteredAt)
	if err != nil {
		t.Fatalf("new user: %v", err)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatalf("hash: %v", err)
	}
	if err := store.Register(Context(t), user, hash, nil); err != nil {
		t.Fatalf("register: %v", err)
	}
}

// NamedMasterKey is a new random master key named id.
func NamedMasterKey(t testing.TB, id string) *secrets.MasterKey {
	t.Helper()
	raw := make([]byte, secrets.MasterKeyBytes)
	_, _ = rand.Read(raw)
	key, err := secrets.NewNamedMasterKey(id, raw)
	if err != nil {
		t.Fatalf("master key: %v", err)
	}
	return key
}

// MasterKeyRing is the ring of the keys, current first.
func MasterKeyRing(t testing.TB, current *secrets.MasterKey, older ...*secrets.MasterKey) *secrets.MasterKeys {
	t.Helper()
	keys, err := secrets.NewMasterKeys(current, older...)
	if err != nil {
		t.Fatalf("master keys: %v", err)
	}
	return keys
}

// ReadUser is the user's row of the store's read model.
func ReadUser(t testing.TB, store *userdb.UserStore, id string) query.User {
	t.Helper()
	u, err := store.ReadModel().UserByID(Context(t), id)
	if err != nil {
		t.Fatalf("read user %s: %v", id, err)
	}
	return u
}

// EraseUser erases the user, at its own request, at RegisteredAt.
func EraseUser(t testing.TB, store *userdb.UserStore, id string) {
	t.Helper()
	ctx := Context(t)
	user, err := store.LoadUser(ctx, id)
	if err == nil {
		err = user.Erase(domain.ErasedByUser, RegisteredAt)
	}
	if err == nil {
		err = store.Erase(ctx, user)
	}
	if err != nil {
		t.Fatalf("erase user %s: %v", id, err)
	}
}
