-- +goose Up
-- A client's key for retrying CreateOrder; NULL when it sent none. One
-- order per user and key.
ALTER TABLE orders ADD COLUMN idempotency_key TEXT;
CREATE UNIQUE INDEX orders_idempotency_key ON orders (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;

-- +goose Down
DROP INDEX orders_idempotency_key;
ALTER TABLE orders DROP COLUMN idempotency_key;
