-- +goose Up
-- The server's keys (the verification links' signing key, the key of the
-- user ids derived from an Idempotency-Key, ...), each wrapped under the
-- master key (MASTER_KEY): AES-256-GCM with a random nonce, the name and
-- the master key's id bound to it. master_key_id is the fingerprint of the
-- master key that wrapped the row, so that a rotation finds the rows of an
-- old key (wrapped_at: when it last did).
CREATE TABLE server_keys (
    name          VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    master_key_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    nonce         VARBINARY(32)   NOT NULL,
    ciphertext    VARBINARY(1024) NOT NULL,
    created_at    DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    wrapped_at    DATETIME(6)     NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    INDEX server_keys_master_key_id (master_key_id)
);

-- The plain keys server_secrets held: a backup holding them must sign
-- nothing the service accepts. server_keys makes new ones on the next
-- start. The random values kept there (the namespace, the deployment id)
-- are not secret and stay.
DELETE FROM server_secrets WHERE name IN ('verify-email', 'idempotency-key');

-- +goose Down
DROP TABLE server_keys;
