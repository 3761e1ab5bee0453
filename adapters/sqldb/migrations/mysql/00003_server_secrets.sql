-- +goose Up
-- Secrets the service makes at random on its first start and every replica
-- then shares, one per purpose (the key of user ids derived from an
-- Idempotency-Key). Never logged, never returned, never in an event.
CREATE TABLE server_secrets (
    name       VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    secret     VARBINARY(64) NOT NULL,
    created_at DATETIME(6)   NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);

-- +goose Down
DROP TABLE server_secrets;
