-- +goose Up
-- Failed password checks per user, counted against a limit.
CREATE TABLE password_failures (
    user_id         VARCHAR(64) NOT NULL PRIMARY KEY,
    failures        INT         NOT NULL,
    first_failed_at DATETIME(6) NOT NULL
);

-- +goose Down
DROP TABLE password_failures;
