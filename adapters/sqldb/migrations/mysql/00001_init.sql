-- +goose Up
-- The event store: one row per event, ordered per stream and globally.
CREATE TABLE events (
    global_position BIGINT       NOT NULL AUTO_INCREMENT PRIMARY KEY,
    event_id        CHAR(36)     NOT NULL UNIQUE,
    stream_id       VARCHAR(64)  NOT NULL,
    stream_version  INT          NOT NULL,
    event_type      VARCHAR(128) NOT NULL,
    schema_version  INT          NOT NULL,
    payload         JSON         NOT NULL,
    metadata        JSON         NOT NULL,
    recorded_at     DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
);

-- One row per registered address, keyed by its lower-cased form; compared
-- byte for byte (the default collations would also fold accents).
CREATE TABLE user_emails (
    email_key VARCHAR(254) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY,
    user_id   VARCHAR(64) NOT NULL UNIQUE
);

-- Password hashes live here, never in the event stream.
CREATE TABLE credentials (
    user_id       VARCHAR(64)  NOT NULL PRIMARY KEY,
    password_hash VARCHAR(100) NOT NULL,
    created_at    DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
);

-- The points ledger: at most one entry per user and reason.
CREATE TABLE points_entries (
    user_id    VARCHAR(64) NOT NULL,
    reason     VARCHAR(64) NOT NULL,
    amount     INT         NOT NULL,
    granted_at DATETIME(6) NOT NULL,
    PRIMARY KEY (user_id, reason)
);

-- "Handler H did K": written in the same transaction as the effect's outcome.
CREATE TABLE processed_messages (
    handler      VARCHAR(128) NOT NULL,
    message_key  VARCHAR(128) NOT NULL,
    processed_at DATETIME(6)  NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (handler, message_key)
);

-- +goose Down
DROP TABLE processed_messages;
DROP TABLE points_entries;
DROP TABLE credentials;
DROP TABLE user_emails;
DROP TABLE events;
