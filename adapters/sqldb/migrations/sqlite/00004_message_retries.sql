-- +goose Up
-- Messages that one handler could not handle for now (an SMTP 4xx for one
-- recipient), waiting off their queue for a later attempt.
CREATE TABLE message_retries (
    id              TEXT         PRIMARY KEY,
    handler         TEXT         NOT NULL,
    topic           TEXT         NOT NULL,
    message_uuid    TEXT         NOT NULL,
    payload         BLOB         NOT NULL,
    metadata        TEXT         NOT NULL,
    reason          TEXT         NOT NULL,
    attempts        INTEGER      NOT NULL,
    first_failed_ms INTEGER      NOT NULL,
    next_attempt_ms INTEGER      NOT NULL,
    CONSTRAINT message_retries_handler_message UNIQUE (handler, message_uuid)
);
CREATE INDEX message_retries_due ON message_retries (next_attempt_ms);

-- +goose Down
DROP TABLE message_retries;
