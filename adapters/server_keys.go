package adapters

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"slices"
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
// the server_keys table wrapped under the master key: the table alone, as
// a backup holds it, gives none of them. Each row names the master key
// that wrapped it (master_key_id), so a rotation finds the rows of an old
// key. A key is never logged; errors never carry one.
type ServerKeys struct {
	db     *sql.DB
	master *MasterKey

	mu    sync.Mutex
	known map[string][]byte
}

// NewServerKeys returns the keys of the database, wrapped under master.
func NewServerKeys(db *sql.DB, master *MasterKey) *ServerKeys {
	return &ServerKeys{db: db, master: master, known: map[string][]byte{}}
}

// Secret returns the key of this name, ServerKeyBytes random bytes, making
// it first if the database holds none: the first replica to ask stores it,
// every other replica and every restart reads the same. A stored key the
// master key does not open is ErrWrongMasterKey. Keys once read are kept
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

// MasterKey is the master key that wraps the keys: the users' keys too.
func (k *ServerKeys) MasterKey() *MasterKey { return k.master }

func (k *ServerKeys) read(ctx context.Context, name string) (WrappedSecret, error) {
	w := WrappedSecret{Name: name}
	query := sqldb.Of(k.db).Rebind(`SELECT master_key_id, nonce, ciphertext FROM server_keys WHERE name = ?`)
	if err := k.db.QueryRowContext(ctx, query, name).Scan(&w.MasterKeyID, &w.Nonce, &w.Ciphertext); err != nil {
		return w, fmt.Errorf("read the %s key: %w", name, err)
	}
	return w, nil
}

// Check opens every stored key: nil if the master key opens them all,
// else ErrWrongMasterKey naming the first it does not open. A service
// checks at start, so that a wrong master key stops it there.
func (k *ServerKeys) Check(ctx context.Context) (err error) {
	rows, err := k.db.QueryContext(ctx, `SELECT name, master_key_id, nonce, ciphertext FROM server_keys ORDER BY name`)
	if err != nil {
		return fmt.Errorf("read the server keys: %w", err)
	}
	defer func() { err = errors.Join(err, rows.Close()) }()
	for rows.Next() {
		var w WrappedSecret
		if err := rows.Scan(&w.Name, &w.MasterKeyID, &w.Nonce, &w.Ciphertext); err != nil {
			return fmt.Errorf("read the server keys: %w", err)
		}
		if _, err := k.master.Unwrap(w); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read the server keys: %w", err)
	}
	return nil
}
