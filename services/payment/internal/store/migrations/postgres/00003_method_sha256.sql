-- +goose Up
-- A SHA-256 of the idempotency key and the payment method token, so a
-- retry under the key with another method is refused; '' for older rows.
ALTER TABLE payments ADD COLUMN method_sha256 TEXT NOT NULL DEFAULT '';

-- +goose Down
ALTER TABLE payments DROP COLUMN method_sha256;
