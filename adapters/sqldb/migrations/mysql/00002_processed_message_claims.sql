-- +goose Up
-- A handler claims a message before its effect and marks it done after, so
-- no transaction stays open across an external call (an SMTP send).
ALTER TABLE processed_messages
    ADD COLUMN state VARCHAR(16) NOT NULL DEFAULT 'done',
    ADD COLUMN claimed_until_ms BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE processed_messages DROP COLUMN claimed_until_ms, DROP COLUMN state;
