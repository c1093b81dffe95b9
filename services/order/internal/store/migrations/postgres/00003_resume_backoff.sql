-- +goose Up
-- The resumer's bookkeeping: how often an unfinished saga was resumed,
-- and when it may be resumed next (microseconds since the epoch). Not
-- part of the saga's state, so changing it never bumps the version.
ALTER TABLE orders ADD COLUMN resume_attempts integer NOT NULL DEFAULT 0;
ALTER TABLE orders ADD COLUMN resume_after bigint NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE orders DROP COLUMN resume_after;
ALTER TABLE orders DROP COLUMN resume_attempts;
