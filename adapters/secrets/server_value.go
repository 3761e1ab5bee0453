package secrets

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"

	"github.com/onboard/onboard/adapters/sqldb"
)

// serverValueBytes is the length of a value made by ServerValue.
const serverValueBytes = 32

// ServerValue returns the random value of this name stored in the
// database, making it first if there is none: the first replica to start
// stores it, every other replica and every restart reads the same. The
// values are kept plain (the server_secrets table), so they must not be
// secret: they name things, such as the default namespace and the
// deployment. A key goes through ServerKeys, wrapped under the master key.
func ServerValue(ctx context.Context, db *sql.DB, name string) ([]byte, error) {
	d := sqldb.Of(db)
	candidate := make([]byte, serverValueBytes)
	if _, err := rand.Read(candidate); err != nil {
		return nil, fmt.Errorf("make the %s value: %w", name, err)
	}
	insert := d.Rebind(d.InsertOrIgnore(`INSERT INTO server_secrets (name, secret) VALUES (?, ?)`, "name"))
	if _, err := db.ExecContext(ctx, insert, name, candidate); err != nil {
		return nil, fmt.Errorf("store the %s value: %w", name, err)
	}
	var value []byte
	if err := db.QueryRowContext(ctx, d.Rebind(`SELECT secret FROM server_secrets WHERE name = ?`), name).Scan(&value); err != nil {
		return nil, fmt.Errorf("read the %s value: %w", name, err)
	}
	if len(value) < serverValueBytes {
		return nil, fmt.Errorf("the stored %s value is %d bytes, want %d", name, len(value), serverValueBytes)
	}
	return value, nil
}
