-- +goose Up
-- Failed password checks per user, counted against a limit.
CREATE TABLE password_failures (
    user_id         TEXT     NOT NULL PRIMARY KEY,
    failures        INTEGER  NOT NULL,
    first_failed_at DATETIME NOT NULL
);

-- +goose Down
DROP TABLE password_failures;
