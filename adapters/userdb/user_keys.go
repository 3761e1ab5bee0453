package userdb

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/onboard/onboard/adapters/eventstore"
	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
)

// UserKeyBytes is the length of a user's key: an AES-256 key.
const UserKeyBytes = 32

// userKeys are the users' keys, kept in user_keys wrapped under the
// current master key, each under the name "user:<id>", and unwrapped under
// the master key its row names. A key is never logged; errors name the
// user by its id alone.
//
// The keys last unwrapped are kept in memory (opened), each beside the
// wrapped form it came from: a key is taken from there only for the same
// wrapped form as read from the database again, so an erasure, on any
// replica, deletes the row and with it every use of the key (the erasing
// process also drops it at once), and a rotation re-wraps it into a form
// that is unwrapped anew. Nothing of it is written anywhere.
type userKeys struct {
	master  *secrets.MasterKeys
	dialect sqldb.Dialect
	queries struct{ insert, read string }
	opened  *lru.Cache[string, openedKey] // nil: none kept
}

// openedKeys is how many users' unwrapped keys a process keeps: about
// 1.5 KB each, AES-GCM's tables included.
const openedKeys = 4096

// openedKey is a user's unwrapped key and the wrapped form it came from.
type openedKey struct {
	wrapped secrets.WrappedSecret
	aead    cipher.AEAD
}

func newUserKeys(db *sql.DB, master *secrets.MasterKeys) *userKeys {
	d := sqldb.Of(db)
	opened, err := lru.New[string, openedKey](openedKeys)
	if err != nil {
		panic(err) // only for a size below 1
	}
	k := &userKeys{master: master, dialect: d, opened: opened}
	k.queries.insert = d.Rebind(d.InsertOrIgnore(
		`INSERT INTO user_keys (user_id, master_key_id, nonce, ciphertext) VALUES (?, ?, ?, ?)`, "user_id"))
	k.queries.read = d.Rebind(UserKeyQuery)
	return k
}

// UserKeyQuery reads the user's wrapped key.
const UserKeyQuery = `SELECT master_key_id, nonce, ciphertext FROM user_keys WHERE user_id = ?`

// queryer reads in a transaction or on the pool.
type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// writer is a transaction the store writes in: a *sql.Tx, or a
// sqldb.Pipeline, which answers no query.
type writer interface {
	queryer
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// scanRow scans the first row of a query into dest: sql.ErrNoRows if it
// has none.
func scanRow(ctx context.Context, q queryer, query string, args []any, dest ...any) error {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer func() { _ = rows.Close() }()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// create stores a new key for the user, unless it has one, and returns
// the user's key.
func (k *userKeys) create(ctx context.Context, db writer, userID string) (cipher.AEAD, error) {
	wrapped, key, err := k.newKey(userID)
	if err != nil {
		return nil, err
	}
	res, err := db.ExecContext(ctx, k.queries.insert, userID, wrapped.MasterKeyID, wrapped.Nonce, wrapped.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("store the key of user %s: %w", userID, err)
	}
	if n, err := res.RowsAffected(); err == nil && n == 1 {
		return key, nil
	}
	return k.key(ctx, db, userID) // another transaction stored one first
}

// newKey makes a new key for the user: its wrapped form, to store, and
// the key.
func (k *userKeys) newKey(userID string) (secrets.WrappedSecret, cipher.AEAD, error) {
	raw := make([]byte, UserKeyBytes)
	if _, err := rand.Read(raw); err != nil {
		return secrets.WrappedSecret{}, nil, fmt.Errorf("make the key of user %s: %w", userID, err)
	}
	wrapped, err := k.master.Wrap(secrets.UserKeyName(userID), raw)
	if err != nil {
		return secrets.WrappedSecret{}, nil, err
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return secrets.WrappedSecret{}, nil, fmt.Errorf("the key of user %s: %w", userID, err)
	}
	key, err := cipher.NewGCM(block)
	return wrapped, key, err
}

// errNoUserKey is a user without a key: registered before keys.
var errNoUserKey = errors.New("the user has no key")

// key reads and unwraps the user's key: errNoUserKey if it has none,
// domain.ErrCorruptData if it does not open.
func (k *userKeys) key(ctx context.Context, db queryer, userID string) (cipher.AEAD, error) {
	w := secrets.WrappedSecret{Name: secrets.UserKeyName(userID)}
	err := scanRow(ctx, db, k.queries.read, []any{userID}, &w.MasterKeyID, &w.Nonce, &w.Ciphertext)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %s: %w", userID, errNoUserKey)
	}
	if err != nil {
		return nil, fmt.Errorf("read the key of user %s: %w", userID, err)
	}
	return k.open(userID, w)
}

// wrapped reads the wrapped keys of users, by user; a user without one
// is left out.
func (k *userKeys) wrapped(ctx context.Context, q eventstore.Querier, userIDs []string) (map[string]secrets.WrappedSecret, error) {
	wrapped := make(map[string]secrets.WrappedSecret, len(userIDs))
	if len(userIDs) == 0 {
		return wrapped, nil
	}
	args := make([]any, len(userIDs))
	for i, id := range userIDs {
		args[i] = id
	}
	rows, err := q.QueryContext(ctx, k.dialect.Rebind(`SELECT user_id, master_key_id, nonce, ciphertext FROM user_keys
		WHERE user_id IN (`+strings.TrimSuffix(strings.Repeat("?, ", len(args)), ", ")+`)`), args...)
	if err != nil {
		return nil, fmt.Errorf("read the users' keys: %w", err)
	}
	defer func() { _ = rows.Close() }()
	for rows.Next() {
		var (
			id string
			w  secrets.WrappedSecret
		)
		if err := rows.Scan(&id, &w.MasterKeyID, &w.Nonce, &w.Ciphertext); err != nil {
			return nil, fmt.Errorf("read the users' keys: %w", err)
		}
		wrapped[id] = w
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the users' keys: %w", err)
	}
	return wrapped, nil
}

// open unwraps the user's key, or takes it as last unwrapped from the
// same wrapped form: domain.ErrCorruptData if it does not open.
func (k *userKeys) open(userID string, w secrets.WrappedSecret) (cipher.AEAD, error) {
	if k.opened != nil {
		if o, ok := k.opened.Get(userID); ok && o.wrapped.MasterKeyID == w.MasterKeyID &&
			bytes.Equal(o.wrapped.Nonce, w.Nonce) && bytes.Equal(o.wrapped.Ciphertext, w.Ciphertext) {
			return o.aead, nil
		}
	}
	w.Name = secrets.UserKeyName(userID)
	raw, err := k.master.Unwrap(w)
	if err != nil || len(raw) != UserKeyBytes {
		return nil, secrets.Corrupt(userID, "the key")
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, secrets.Corrupt(userID, "the key")
	}
	aead, err := cipher.NewGCM(block)
	if err == nil && k.opened != nil {
		k.opened.Add(userID, openedKey{wrapped: w, aead: aead})
	}
	return aead, err
}

// forget drops the user's key from memory: its row is deleted.
func (k *userKeys) forget(userID string) {
	if k.opened != nil {
		k.opened.Remove(userID)
	}
}

// keyOrCreate is the user's key, made first for a user registered before
// keys.
func (k *userKeys) keyOrCreate(ctx context.Context, db execer, userID string) (cipher.AEAD, error) {
	key, err := k.key(ctx, db, userID)
	if errors.Is(err, errNoUserKey) {
		return k.create(ctx, db, userID)
	}
	return key, err
}

// sealField encrypts the user's value of a column of the users read model;
// the user id and the column are bound to it (GCM's additional data), so
// a value copied to another user or column does not open.
func sealField(key cipher.AEAD, userID, column, value string) (string, error) {
	sealed, err := secrets.SealValue(key, fieldAAD(userID, column), value)
	if err != nil {
		return "", fmt.Errorf("encrypt the %s of user %s: %w", column, userID, err)
	}
	return sealed, nil
}

// openField decrypts a value sealField made: domain.ErrCorruptData if it
// is not one or does not open.
func openField(key cipher.AEAD, userID, column, stored string) (string, error) {
	plain, ok := secrets.OpenValue(key, fieldAAD(userID, column), stored)
	if !ok {
		return "", secrets.Corrupt(userID, "the "+column)
	}
	return plain, nil
}

// fieldAAD is the additional data of a sealed field: a label, then the
// user id and the column, each behind its length.
func fieldAAD(userID, column string) []byte {
	return secrets.LabelledAAD("onboard user field\x00", userID, column)
}
