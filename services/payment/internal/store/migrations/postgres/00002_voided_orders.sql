-- +goose Up
-- An order refunded before it had a successful charge: the saga gave it
-- up while a charge may still be in flight, so any later new charge for
-- it is refused. One row per order; created_at is microseconds since the
-- epoch.
CREATE TABLE voided_orders (
    order_id   text PRIMARY KEY,
    created_at bigint NOT NULL
);

-- +goose Down
DROP TABLE voided_orders;
