-- +goose Up
-- An order whose stock was released before it had a reservation: the
-- saga gave it up while a reservation may still be in flight, so any
-- later reservation for it is refused. One row per order; created_at is
-- microseconds since the epoch.
CREATE TABLE released_orders (
    order_id   TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);

-- +goose Down
DROP TABLE released_orders;
