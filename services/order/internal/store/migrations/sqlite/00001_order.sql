-- +goose Up
-- Times are microseconds since the epoch in both schemas, so one SQL
-- implementation serves both databases. Items are a JSON array: they are
-- written once and only ever read with their order.
CREATE TABLE orders (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL,
    items         TEXT NOT NULL,
    amount_cents  INTEGER NOT NULL CHECK (amount_cents >= 0),
    currency      TEXT NOT NULL,
    payment_token TEXT NOT NULL,
    status        TEXT NOT NULL CHECK (status IN ('pending', 'compensating', 'confirmed', 'failed')),
    step          TEXT NOT NULL,
    owes_release  INTEGER NOT NULL,
    owes_refund   INTEGER NOT NULL,
    reason        TEXT NOT NULL,
    variant       TEXT NOT NULL,
    version       INTEGER NOT NULL CHECK (version > 0),
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);
-- The resumer's query: unfinished sagas.
CREATE INDEX orders_unfinished ON orders (id) WHERE status IN ('pending', 'compensating');

-- +goose Down
DROP TABLE orders;
