-- +goose Up
-- A key per user (AES-256-GCM, 32 random bytes), wrapped under the master
-- key whose id master_key_id names, as server_keys are: the personal fields
-- of the user's rows are encrypted under it, and destroying it erases them.
CREATE TABLE user_keys (
    user_id       TEXT        PRIMARY KEY,
    master_key_id TEXT        NOT NULL,
    nonce         BYTEA       NOT NULL,
    ciphertext    BYTEA       NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX user_keys_master_key_id ON user_keys (master_key_id);

-- +goose Down
DROP TABLE user_keys;
