package userdb

import (
	"context"
	"crypto/cipher"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/onboard/onboard/adapters/eventstore"
	"github.com/onboard/onboard/adapters/secrets"
	"github.com/onboard/onboard/adapters/sqldb"
	"github.com/onboard/onboard/app/query"
	"github.com/onboard/onboard/domain"
)

// UsersTable is the users read model: one row per user, the projection of
// its stream. A row's version is the stream version it shows, which makes
// it the projection's checkpoint for that stream: a stream whose events go
// beyond its row's version is behind, whatever order the global positions
// committed in.
const UsersTable = "users"

var userColumns = []string{"user_id", "name", "email", "email_key", "email_verified", "locale",
	"registered_at", "erased", "version", "last_position"}

// UserReadModel writes the users read model (inline, in the transaction
// that appends a user's events) and reads it.
type UserReadModel struct {
	db      *sql.DB
	dialect sqldb.Dialect
	events  *eventstore.Store
	lookup  emailLookup
	keys    *userKeys
	queries struct{ byID, byEmail, upsert string }
}

// newUserReadModel returns the read model of db, whose email_key column
// holds the hashes of lookup and whose name and email columns are sealed
// under the users' keys.
func newUserReadModel(db *sql.DB, events *eventstore.Store, lookup emailLookup, keys *userKeys) *UserReadModel {
	d := sqldb.Of(db)
	m := &UserReadModel{db: db, dialect: d, events: events, lookup: lookup, keys: keys}
	// A read is one row, with the user's wrapped key beside it.
	selectUser := `SELECT u.user_id, u.name, u.email, u.email_verified, u.locale, u.registered_at, u.erased, u.version,
		k.master_key_id, k.nonce, k.ciphertext FROM ` + UsersTable + ` u LEFT JOIN user_keys k ON k.user_id = u.user_id`
	m.queries.byID = d.Rebind(selectUser + ` WHERE u.user_id = ?`)
	m.queries.byEmail = d.Rebind(selectUser + ` WHERE u.email_key = ? ORDER BY u.version DESC LIMIT 1`)
	m.queries.upsert = m.upsertQuery(UsersTable)
	return m
}

// execer runs a statement in a transaction or on the pool.
type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// createTable creates table with the read model's columns and indexes,
// unless it exists. Index names carry a random suffix, as a rebuilt table
// keeps its indexes when it is renamed.
func (m *UserReadModel) createTable(ctx context.Context, db execer, table string) error {
	if exists, err := m.tableExists(ctx, db, table); err != nil || exists {
		return err
	}
	t := m.dialect.Types()
	suffix := randomHex(4)
	for _, statement := range []string{
		fmt.Sprintf(`CREATE TABLE %s (
			user_id %s NOT NULL PRIMARY KEY, name %s NOT NULL, email %s NOT NULL, email_key %s NOT NULL,
			email_verified %s NOT NULL, locale %s NOT NULL, registered_at %s NOT NULL,
			erased %s NOT NULL DEFAULT FALSE, version %s NOT NULL, last_position %s NOT NULL)%s`,
			table, t.ID, t.Text, t.Text, t.Key, t.Bool, t.Key, t.Time, t.Bool, t.Int, t.BigInt, t.TableOptions),
		fmt.Sprintf(`CREATE INDEX %s_email_%s ON %s (email_key)`, table, suffix, table),
		fmt.Sprintf(`CREATE INDEX %s_position_%s ON %s (last_position)`, table, suffix, table),
	} {
		if _, err := db.ExecContext(ctx, statement); err != nil {
			return fmt.Errorf("create %s: %w", table, err)
		}
	}
	return nil
}

// tableExists probes table with a query that reads no row.
func (m *UserReadModel) tableExists(ctx context.Context, db execer, table string) (bool, error) {
	rows, err := db.QueryContext(ctx, "SELECT 1 FROM "+table+" WHERE 1 = 0")
	if m.dialect.IsMissingTable(err) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("look up %s: %w", table, err)
	}
	defer func() { _ = rows.Close() }()
	return true, rows.Err()
}

// upsertQuery writes a user's row into table unless the row shows a later
// version; last_position is the global position of the stream's newest
// event, which the transaction may just have appended.
func (m *UserReadModel) upsertQuery(table string) string {
	values := make([]string, len(userColumns))
	for i := range values {
		values[i] = "?"
	}
	values[len(values)-1] = "(SELECT max(global_position) FROM events WHERE stream_id = ?)"
	return m.dialect.UpsertNewer(table, "user_id", "version", userColumns, values)
}

// write stores the user's row in table, its name and email sealed under
// the user's key (read through db, made first for a user registered
// before keys), unless the row shows a later version already. An erased
// user's row holds no personal data.
func (m *UserReadModel) write(ctx context.Context, db execer, table string, u *domain.User) error {
	if u.Erased() {
		return m.writeErased(ctx, db, table, u)
	}
	key, err := m.keys.keyOrCreate(ctx, db, u.ID())
	if err != nil {
		return err
	}
	return m.writeSealed(ctx, db, table, u, key)
}

// writeSealed is write under the user's key, already at hand.
func (m *UserReadModel) writeSealed(ctx context.Context, db writer, table string, u *domain.User, key cipher.AEAD) error {
	name, email, err := sealRow(key, u)
	if err != nil {
		return err
	}
	return m.upsert(ctx, db, table, u, name, email, m.lookup.hash(u.Email().Key()))
}

// sealRow is the user's name and address as its row stores them, sealed
// under its key.
func sealRow(key cipher.AEAD, u *domain.User) (name, email string, err error) {
	if name, err = sealField(key, u.ID(), "name", u.Name()); err != nil {
		return "", "", err
	}
	email, err = sealField(key, u.ID(), "email", u.Email().String())
	return name, email, err
}

// writeErased is write of an erased user: a row marked erased, with no
// name, address or address hash.
func (m *UserReadModel) writeErased(ctx context.Context, db writer, table string, u *domain.User) error {
	return m.upsert(ctx, db, table, u, "", "", "")
}

// upsert writes the user's row into table with these stored values of
// its name, address and address hash.
func (m *UserReadModel) upsert(ctx context.Context, db writer, table string, u *domain.User, name, email, emailKey string) error {
	query := m.queries.upsert
	if table != UsersTable { // a rebuild's table
		query = m.upsertQuery(table)
	}
	_, err := db.ExecContext(ctx, query, u.ID(), name, email, emailKey,
		u.EmailVerified(), u.Locale(), u.RegisteredAt().UTC(), u.Erased(), u.Version(), u.ID())
	if err != nil {
		return fmt.Errorf("project user into %s: %w", table, err)
	}
	return nil
}

// UserByID reads a user's row, or returns domain.ErrUserNotFound.
func (m *UserReadModel) UserByID(ctx context.Context, id string) (query.User, error) {
	return m.readUser(ctx, m.queries.byID, id)
}

// UserByEmail reads the row of the user holding the address (any case),
// or returns domain.ErrUserNotFound.
func (m *UserReadModel) UserByEmail(ctx context.Context, email string) (query.User, error) {
	return m.readUser(ctx, m.queries.byEmail, m.lookup.hash(email))
}

// readUser reads one row and opens its name and email under the user's
// key, read in the same query: domain.ErrCorruptData if either does not
// open, domain.ErrUserErased for an erased user's. A row of a user without a key, written in the clear before keys
// and not sealed yet (SealPlainRows), reads as it is.
func (m *UserReadModel) readUser(ctx context.Context, q string, arg string) (query.User, error) {
	var (
		u           query.User
		masterKeyID sql.NullString
		wrapped     secrets.WrappedSecret
		erased      bool
	)
	err := m.db.QueryRowContext(ctx, q, arg).Scan(&u.ID, &u.Name, &u.Email, &u.EmailVerified, &u.Locale,
		&u.RegisteredAt, &erased, &u.Version, &masterKeyID, &wrapped.Nonce, &wrapped.Ciphertext)
	if errors.Is(err, sql.ErrNoRows) {
		return query.User{}, domain.ErrUserNotFound
	}
	if err != nil {
		return query.User{}, fmt.Errorf("read user: %w", err)
	}
	if erased {
		return query.User{}, domain.ErrUserErased
	}
	u.RegisteredAt = u.RegisteredAt.UTC()
	if !masterKeyID.Valid {
		if secrets.IsSealed(u.Name) || secrets.IsSealed(u.Email) {
			return query.User{}, secrets.Corrupt(u.ID, "the key")
		}
		return u, nil
	}
	wrapped.MasterKeyID = masterKeyID.String
	key, err := m.keys.open(u.ID, wrapped)
	if err != nil {
		return query.User{}, err
	}
	if u.Name, err = openField(key, u.ID, "name", u.Name); err != nil {
		return query.User{}, err
	}
	if u.Email, err = openField(key, u.ID, "email", u.Email); err != nil {
		return query.User{}, err
	}
	return u, nil
}

// randomHex is n random bytes, in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
