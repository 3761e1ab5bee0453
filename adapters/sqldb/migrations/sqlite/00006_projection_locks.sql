-- +goose Up
-- One rebuild of a projection at a time: the rebuild holds its row, and
-- renews held_until_ms (Unix ms) as it goes; a row past it is free.
CREATE TABLE projection_locks (
    name          TEXT    NOT NULL PRIMARY KEY,
    holder        TEXT    NOT NULL,
    held_until_ms INTEGER NOT NULL
);

-- +goose Down
DROP TABLE projection_locks;
