-- +goose Up
-- The server's keys (the verification links' signing key, the key of the
-- user ids derived from an Idempotency-Key, ...), each wrapped under the
-- master key (MASTER_KEY): AES-256-GCM with a random nonce, the name and
-- the master key's id bound to it. master_key_id is the fingerprint of the
-- master key that wrapped the row, so that a rotation finds the rows of an
-- old key (wrapped_at: when it last did).
CREATE TABLE server_keys (
    name          TEXT NOT NULL PRIMARY KEY,
    master_key_id TEXT NOT NULL,
    nonce         BLOB NOT NULL,
    ciphertext    BLOB NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    wrapped_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX server_keys_master_key_id ON server_keys (master_key_id);

-- The plain keys server_secrets held: a backup holding them must sign
-- nothing the service accepts. server_keys makes new ones on the next
-- start. The random values kept there (the namespace, the deployment id)
-- are not secret and stay.
DELETE FROM server_secrets WHERE name IN ('verify-email', 'idempotency-key');

-- +goose Down
DROP TABLE server_keys;
