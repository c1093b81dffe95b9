-- +goose Up
-- Times are microseconds since the epoch, as in the PostgreSQL schema, so
-- one SQL implementation serves both databases. The unique indexes are
-- what make charging safe under concurrency: one row per idempotency
-- key, and at most one successful (captured or refunded) payment per
-- order, however many requests race.
CREATE TABLE payments (
    id              TEXT PRIMARY KEY,
    order_id        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    amount          INTEGER NOT NULL CHECK (amount > 0),
    currency        TEXT NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('captured', 'declined', 'refunded')),
    decline_reason  TEXT NOT NULL,
    method_last4    TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE UNIQUE INDEX payments_idempotency_key ON payments (idempotency_key);
CREATE UNIQUE INDEX payments_one_success_per_order ON payments (order_id) WHERE status <> 'declined';
CREATE INDEX payments_order ON payments (order_id, id);

-- +goose Down
DROP TABLE payments;
