-- +goose Up
-- A key per user (AES-256-GCM, 32 random bytes), wrapped under the master
-- key whose id master_key_id names, as server_keys are: the personal fields
-- of the user's rows are encrypted under it, and destroying it erases them.
CREATE TABLE user_keys (
    user_id       VARCHAR(64) NOT NULL PRIMARY KEY,
    master_key_id VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    nonce         VARBINARY(32)  NOT NULL,
    ciphertext    VARBINARY(128) NOT NULL,
    created_at    DATETIME(6)    NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    INDEX user_keys_master_key_id (master_key_id)
);

-- +goose Down
DROP TABLE user_keys;
