package secrets

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/onboard/onboard/adapters/sqldb"
)

// Names of the server's keys (ServerKeys).
const (
	// IdempotencyKeySecret keys the user ids derived from an
	// Idempotency-Key.
	IdempotencyKeySecret = "idempotency-key"
	// VerificationKeySecret signs the tokens of verification links.
	VerificationKeySecret = "verify-email"
	// EmailLookupSecret keys the hashes that stand for addresses in
	// user_emails and the users read model.
	EmailLookupSecret = "email-lookup"
)

// ServerKeyBytes is the length of a key made by ServerKeys.Secret.
const ServerKeyBytes = 32

// ServerKeys are the secret keys of the server, one per purpose, kept in
// the server_keys table wrapped under the current master key: the table
// alone, as a backup holds it, gives none of them. Each row names the
// master key that wrapped it (master_key_id), so a rotation finds the rows
// of an old key. A key is never logged; errors never carry one.
type ServerKeys struct {
	db     *sql.DB
	master *MasterKeys

	mu    sync.Mutex
	known map[string][]byte
}

// NewServerKeys returns the keys of the database, wrapped under master's
// current key, unwrapped under the key each row names.
func NewServerKeys(db *sql.DB, master *MasterKeys) *ServerKeys {
	return &ServerKeys{db: db, master: master, known: map[string][]byte{}}
}

// Secret returns the key of this name, ServerKeyBytes random bytes, making
// it first if the database holds none: the first replica to ask stores it,
// every other replica and every restart reads the same. A stored key the
// master keys do not open is ErrWrongMasterKey. Keys once read are kept
// in memory, so asking again costs no query.
func (k *ServerKeys) Secret(ctx context.Context, name string) ([]byte, error) {
	k.mu.Lock()
	known, ok := k.known[name]
	k.mu.Unlock()
	if ok {
		return slices.Clone(known), nil
	}
	candidate := make([]byte, ServerKeyBytes)
	if _, err := rand.Read(candidate); err != nil {
		return nil, fmt.Errorf("make the %s key: %w", name, err)
	}
	wrapped, err := k.master.Wrap(name, candidate)
	if err != nil {
		return nil, err
	}
	d := sqldb.Of(k.db)
	insert := d.Rebind(d.InsertOrIgnore(
		`INSERT INTO server_keys (name, master_key_id, nonce, ciphertext) VALUES (?, ?, ?, ?)`, "name"))
	if _, err := k.db.ExecContext(ctx, insert, name, wrapped.MasterKeyID, wrapped.Nonce, wrapped.Ciphertext); err != nil {
		return nil, fmt.Errorf("store the %s key: %w", name, err)
	}
	stored, err := k.read(ctx, name)
	if err != nil {
		return nil, err
	}
	secret, err := k.master.Unwrap(stored)
	if err != nil {
		return nil, err
	}
	if len(secret) != ServerKeyBytes {
		return nil, fmt.Errorf("the stored %s key is %d bytes, want %d", name, len(secret), ServerKeyBytes)
	}
	k.mu.Lock()
	k.known[name] = slices.Clone(secret)
	k.mu.Unlock()
	return secret, nil
}

// MasterKeys are the master keys that wrap the keys: the users' keys too.
func (k *ServerKeys) MasterKeys() *MasterKeys { return k.master }

func (k *ServerKeys) read(ctx context.Context, name string) (WrappedSecret, error) {
	w := WrappedSecret{Name: name}
	query := sqldb.Of(k.db).Rebind(`SELECT master_key_id, nonce, ciphertext FROM server_keys WHERE name = ?`)
	if err := k.db.QueryRowContext(ctx, query, name).Scan(&w.MasterKeyID, &w.Nonce, &w.Ciphertext); err != nil {
		return w, fmt.Errorf("read the %s key: %w", name, err)
	}
	return w, nil
}

// Check tells whether the master keys open every stored key, at start,
// so that a wrong or missing master key stops a service there. It opens
// every server key, and finds each master key id of user_keys (one index
// probe per id) and opens one user key of each. Ids of keys it does not
// hold are ErrUnknownMasterKey, naming them and how many keys each wraps;
// a key that does not open what it names is ErrWrongMasterKey.
func (k *ServerKeys) Check(ctx context.Context) error {
	servers, err := k.checkServerKeys(ctx)
	if err != nil {
		return err
	}
	users, err := k.checkUserKeys(ctx)
	if err != nil {
		return err
	}
	unknown := map[string]bool{}
	for id := range servers {
		unknown[id] = true
	}
	for id := range users {
		unknown[id] = true
	}
	if len(unknown) == 0 {
		return nil
	}
	var wrapped []string
	for _, id := range slices.Sorted(maps.Keys(unknown)) {
		wrapped = append(wrapped, fmt.Sprintf("master key %s (%d server keys, %d users' keys)", id, servers[id], users[id]))
	}
	return fmt.Errorf("%w: the database holds keys wrapped under %s, not among the master keys given (%s)",
		ErrUnknownMasterKey, strings.Join(wrapped, ", "), strings.Join(k.master.IDs(), ", "))
}

// checkServerKeys opens every server key under the key it names, and
// counts those under keys it does not hold, by id.
func (k *ServerKeys) checkServerKeys(ctx context.Context) (unknown map[string]int, err error) {
	rows, err := k.db.QueryContext(ctx, `SELECT name, master_key_id, nonce, ciphertext FROM server_keys ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("read the server keys: %w", err)
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	unknown = map[string]int{}
	for rows.Next() {
		var w WrappedSecret
		if err := rows.Scan(&w.Name, &w.MasterKeyID, &w.Nonce, &w.Ciphertext); err != nil {
			return nil, fmt.Errorf("read the server keys: %w", err)
		}
		if _, err := k.master.Unwrap(w); errors.Is(err, ErrUnknownMasterKey) {
			unknown[w.MasterKeyID]++
		} else if err != nil {
			return nil, err
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the server keys: %w", err)
	}
	return unknown, nil
}

// checkUserKeys walks the distinct master key ids of user_keys, each the
// next one after the last in the index on master_key_id: one probe per
// id, however many users. Under each id it holds, a few users' keys must
// include one that opens (one altered row is that user's Corrupt data,
// not a wrong key); under each id it does not, it counts the keys.
func (k *ServerKeys) checkUserKeys(ctx context.Context) (map[string]int, error) {
	d := sqldb.Of(k.db)
	first := `SELECT master_key_id FROM user_keys ORDER BY master_key_id LIMIT 1`
	next := d.Rebind(`SELECT master_key_id FROM user_keys WHERE master_key_id > ? ORDER BY master_key_id LIMIT 1`)
	sample := d.Rebind(`SELECT user_id, nonce, ciphertext FROM user_keys WHERE master_key_id = ? LIMIT 3`)
	count := d.Rebind(`SELECT count(*) FROM user_keys WHERE master_key_id = ?`)
	unknown := map[string]int{}
	var id string
	err := k.db.QueryRowContext(ctx, first).Scan(&id)
	for ; err == nil; err = k.db.QueryRowContext(ctx, next, id).Scan(&id) {
		if k.master.find(id) == nil {
			var n int
			if err := k.db.QueryRowContext(ctx, count, id).Scan(&n); err != nil {
				return nil, fmt.Errorf("count the users' keys: %w", err)
			}
			unknown[id] = n
			continue
		}
		if err := k.openOneUserKey(ctx, sample, id); err != nil {
			return nil, err
		}
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("read the users' master key ids: %w", err)
	}
	return unknown, nil
}

// openOneUserKey reads the users' keys of query under the master key id,
// and returns nil once one opens, else the first error.
func (k *ServerKeys) openOneUserKey(ctx context.Context, query, id string) (err error) {
	rows, err := k.db.QueryContext(ctx, query, id)
	if err != nil {
		return fmt.Errorf("read the users' keys: %w", err)
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	var failed error
	for rows.Next() {
		var userID string
		w := WrappedSecret{MasterKeyID: id}
		if err := rows.Scan(&userID, &w.Nonce, &w.Ciphertext); err != nil {
			return fmt.Errorf("read the users' keys: %w", err)
		}
		w.Name = UserKeyName(userID)
		if _, err := k.master.Unwrap(w); err == nil {
			return nil
		} else if failed == nil {
			failed = err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the users' keys: %w", err)
	}
	return failed
}
