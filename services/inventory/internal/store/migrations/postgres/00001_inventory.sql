-- +goose Up
-- Times are microseconds since the epoch, as in the SQLite schema, so
-- one SQL implementation serves both databases. The CHECKs are the last
-- line against overselling: a bug that would drive stock negative fails
-- its transaction instead.
CREATE TABLE products (
    id          text PRIMARY KEY,
    sku         text NOT NULL,
    name        text NOT NULL,
    price_cents bigint NOT NULL CHECK (price_cents >= 0),
    available   bigint NOT NULL CHECK (available >= 0),
    reserved    bigint NOT NULL CHECK (reserved >= 0),
    version     bigint NOT NULL CHECK (version > 0),
    created_at  bigint NOT NULL,
    updated_at  bigint NOT NULL
);
CREATE UNIQUE INDEX products_sku_key ON products (sku);

CREATE TABLE reservations (
    order_id   text PRIMARY KEY,
    state      text NOT NULL CHECK (state IN ('pending', 'committed', 'released', 'expired')),
    expires_at bigint NOT NULL,
    created_at bigint NOT NULL,
    updated_at bigint NOT NULL
);
-- The sweeper's query: pending reservations by expiry.
CREATE INDEX reservations_pending_expiry ON reservations (expires_at) WHERE state = 'pending';

CREATE TABLE reservation_items (
    order_id   text NOT NULL REFERENCES reservations (order_id),
    product_id text NOT NULL REFERENCES products (id),
    quantity   bigint NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (order_id, product_id)
);

-- +goose Down
DROP TABLE reservation_items;
DROP TABLE reservations;
DROP TABLE products;
