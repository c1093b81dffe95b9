-- +goose Up
-- Times are microseconds since the epoch, as in the SQLite schema, so
-- one SQL implementation serves both databases. The unique indexes are
-- what make charging safe under concurrency: one row per idempotency
-- key, and at most one successful (captured or refunded) payment per
-- order, however many requests race.
CREATE TABLE payments (
    id              text PRIMARY KEY,
    order_id        text NOT NULL,
    idempotency_key text NOT NULL,
    amount          bigint NOT NULL CHECK (amount > 0),
    currency        text NOT NULL,
    status          text NOT NULL CHECK (status IN ('captured', 'declined', 'refunded')),
    decline_reason  text NOT NULL,
    method_last4    text NOT NULL,
    created_at      bigint NOT NULL,
    updated_at      bigint NOT NULL
);
CREATE UNIQUE INDEX payments_idempotency_key ON payments (idempotency_key);
CREATE UNIQUE INDEX payments_one_success_per_order ON payments (order_id) WHERE status <> 'declined';
CREATE INDEX payments_order ON payments (order_id, id);

-- +goose Down
DROP TABLE payments;
