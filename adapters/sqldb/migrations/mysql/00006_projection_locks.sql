-- +goose Up
-- One rebuild of a projection at a time: the rebuild holds its row, and
-- renews held_until_ms (Unix ms) as it goes; a row past it is free.
CREATE TABLE projection_locks (
    name          VARCHAR(64) NOT NULL PRIMARY KEY,
    holder        VARCHAR(64) NOT NULL,
    held_until_ms BIGINT      NOT NULL
);

-- +goose Down
DROP TABLE projection_locks;
