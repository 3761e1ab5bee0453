-- +goose Up
-- Failed password checks per user, counted against a limit.
CREATE TABLE password_failures (
    user_id         TEXT        PRIMARY KEY,
    failures        INTEGER     NOT NULL,
    first_failed_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE password_failures;
