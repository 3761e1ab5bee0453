package userdb

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/domain"
)

// emailLookup turns an address into the key that finds it at rest, in
// user_emails and in the users read model: the hex HMAC-SHA-256 of its
// normalised form (domain.EmailKey) under the server's EmailLookupSecret,
// so that neither table holds an address, and the same address in any
// letter case has one key.
type emailLookup struct{ key []byte }

func newEmailLookup(key []byte) (emailLookup, error) {
	if len(key) < secrets.ServerKeyBytes {
		return emailLookup{}, fmt.Errorf("user store: the email lookup key must be at least %d bytes", secrets.ServerKeyBytes)
	}
	return emailLookup{key: slices.Clone(key)}, nil
}

// hash is the lookup key of the address, in any letter case.
func (l emailLookup) hash(address string) string {
	mac := hmac.New(sha256.New, l.key)
	mac.Write([]byte(domain.EmailKey(address)))
	return hex.EncodeToString(mac.Sum(nil))
}

// emailKeyBatch is how many plain keys one transaction of HashPlainEmailKeys
// rewrites; emailKeyAttempts bounds the tries of a batch the database
// aborted (a deadlock between replicas starting at once).
const (
	emailKeyBatch    = 500
	emailKeyAttempts = 3
)

// HashPlainEmailKeys, run after the read model's Prepare, rewrites every key of user_emails and of the users
// read model still holding an address (as versions before the hashes
// wrote them) to its hash, and returns how many rows it changed. It runs
// at start, before serving: a batch is one transaction whose updates name
// the plain key they replace, so that replicas starting at once each
// rewrite a row at most once, and a second run changes nothing.
func (s *UserStore) HashPlainEmailKeys(ctx context.Context) (int, error) {
	total := 0
	for _, table := range []string{"user_emails", UsersTable} {
		exists, err := s.readModel.tableExists(ctx, s.db, table)
		if err != nil {
			return total, err
		}
		if !exists {
			continue // a read model not made yet holds nothing
		}
		n, err := s.hashPlainKeys(ctx, table)
		total += n
		if err != nil {
			return total, fmt.Errorf("hash the email keys of %s: %w", table, err)
		}
	}
	return total, nil
}

func (s *UserStore) hashPlainKeys(ctx context.Context, table string) (int, error) {
	d := sqldb.Of(s.db)
	// A plain key is an address, with its '@'; a hex hash has none.
	find := d.Rebind(`SELECT DISTINCT email_key FROM ` + table + ` WHERE email_key LIKE '%@%' ORDER BY email_key LIMIT ?`)
	update := d.Rebind(`UPDATE ` + table + ` SET email_key = ? WHERE email_key = ?`)
	total := 0
	var last []string
	for {
		rows, err := s.db.QueryContext(ctx, find, emailKeyBatch)
		if err != nil {
			return total, err
		}
		keys, err := scanStrings(rows)
		if err != nil || len(keys) == 0 {
			return total, err
		}
		if slices.Equal(keys, last) {
			return total, errors.New("a batch of plain keys does not change")
		}
		last = keys
		for attempt := 1; ; attempt++ {
			n, err := s.hashKeys(ctx, update, keys)
			if err == nil {
				total += n
				break
			}
			if !sqldb.Transient(err) || attempt == emailKeyAttempts || ctx.Err() != nil {
				return total, err
			}
		}
	}
}

// hashKeys rewrites the plain keys, in their order, in one transaction:
// a key another replica rewrote meanwhile changes nothing.
func (s *UserStore) hashKeys(ctx context.Context, update string, keys []string) (int, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	total := 0
	for _, key := range keys {
		res, err := tx.ExecContext(ctx, update, s.lookup.hash(key), key)
		if err != nil {
			return 0, err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, err
		}
		total += int(n)
	}
	return total, commit(tx)
}
