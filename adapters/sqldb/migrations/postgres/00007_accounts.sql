-- +goose Up
-- Sign-in sessions. A token is stored only as its SHA-256: the table gives
-- nobody a session.
CREATE TABLE sessions (
    token_hash   TEXT        PRIMARY KEY,
    user_id      TEXT        NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX sessions_user_id ON sessions (user_id);

-- Password checks counted against limits, before each check: per account,
-- per client address, per both. subject is a keyed hash: no address here.
-- Times are Unix milliseconds, so that one UPDATE can compute the next
-- allowed attempt in every dialect.
CREATE TABLE password_guesses (
    subject          TEXT    PRIMARY KEY,
    failures         INTEGER NOT NULL,
    last_failed_ms   BIGINT  NOT NULL,
    blocked_until_ms BIGINT  NOT NULL
);

-- Outbound emails counted per recipient, account and client in a window.
CREATE TABLE email_budget (
    subject        TEXT    PRIMARY KEY,
    sent           INTEGER NOT NULL,
    window_ends_ms BIGINT  NOT NULL
);

-- The guess counts of 00005 were per user alone: password_guesses counts
-- them now.
DROP TABLE password_failures;

-- +goose Down
CREATE TABLE password_failures (
    user_id         TEXT        PRIMARY KEY,
    failures        INTEGER     NOT NULL,
    first_failed_at TIMESTAMPTZ NOT NULL
);
DROP TABLE email_budget;
DROP TABLE password_guesses;
DROP TABLE sessions;
