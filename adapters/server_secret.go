package adapters

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"

	"github.com/onboard/onboard/adapters/sqldb"
)

// IdempotencyKeySecret names the secret that keys the user ids derived from
// an Idempotency-Key.
const IdempotencyKeySecret = "idempotency-key"

// serverSecretBytes is the length of a secret made by ServerSecret.
const serverSecretBytes = 32

// ServerSecret returns the secret of this name stored in the database,
// making it at random first if there is none: the first replica to start
// stores it, every other replica and every restart reads the same. The
// secret is never logged; errors do not carry it.
func ServerSecret(ctx context.Context, db *sql.DB, name string) ([]byte, error) {
	d := sqldb.Of(db)
	candidate := make([]byte, serverSecretBytes)
	if _, err := rand.Read(candidate); err != nil {
		return nil, fmt.Errorf("make the %s secret: %w", name, err)
	}
	insert := d.Rebind(d.InsertOrIgnore(`INSERT INTO server_secrets (name, secret) VALUES (?, ?)`, "name"))
	if _, err := db.ExecContext(ctx, insert, name, candidate); err != nil {
		return nil, fmt.Errorf("store the %s secret: %w", name, err)
	}
	var secret []byte
	if err := db.QueryRowContext(ctx, d.Rebind(`SELECT secret FROM server_secrets WHERE name = ?`), name).Scan(&secret); err != nil {
		return nil, fmt.Errorf("read the %s secret: %w", name, err)
	}
	if len(secret) < serverSecretBytes {
		return nil, fmt.Errorf("the stored %s secret is %d bytes, want %d", name, len(secret), serverSecretBytes)
	}
	return secret, nil
}
