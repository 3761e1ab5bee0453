-- +goose Up
-- The event store: one row per event, ordered per stream and globally.
CREATE TABLE events (
    global_position BIGSERIAL PRIMARY KEY,
    event_id        UUID        NOT NULL UNIQUE,
    stream_id       TEXT        NOT NULL,
    stream_version  INTEGER     NOT NULL,
    event_type      TEXT        NOT NULL,
    schema_version  INTEGER     NOT NULL,
    payload         JSONB       NOT NULL,
    metadata        JSONB       NOT NULL DEFAULT '{}',
    recorded_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
);

-- One row per registered address, keyed by its lower-cased form.
CREATE TABLE user_emails (
    email_key TEXT PRIMARY KEY,
    user_id   TEXT NOT NULL UNIQUE
);

-- Password hashes live here, never in the event stream.
CREATE TABLE credentials (
    user_id       TEXT PRIMARY KEY,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The points ledger: at most one entry per user and reason.
CREATE TABLE points_entries (
    user_id    TEXT        NOT NULL,
    reason     TEXT        NOT NULL,
    amount     INTEGER     NOT NULL,
    granted_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (user_id, reason)
);

-- "Handler H did K": written in the same transaction as the effect's outcome.
CREATE TABLE processed_messages (
    handler      TEXT NOT NULL,
    message_key  TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (handler, message_key)
);

-- +goose Down
DROP TABLE processed_messages;
DROP TABLE points_entries;
DROP TABLE credentials;
DROP TABLE user_emails;
DROP TABLE events;
