-- +goose Up
-- Secrets the service makes at random on its first start and every replica
-- then shares, one per purpose (the key of user ids derived from an
-- Idempotency-Key). Never logged, never returned, never in an event.
CREATE TABLE server_secrets (
    name       TEXT        PRIMARY KEY,
    secret     BYTEA       NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE server_secrets;
