-- +goose Up
-- The data upgrades that a start runs (rewriting what older versions
-- stored: address keys to hashes, personal fields to ciphertext, the users
-- read model caught up), each recorded here by the first start that found
-- nothing left for it to change, and skipped by every start after it.
CREATE TABLE start_upgrades (
    name    TEXT        PRIMARY KEY,
    done_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE start_upgrades;
