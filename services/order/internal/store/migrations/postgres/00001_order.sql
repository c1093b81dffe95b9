-- +goose Up
-- Times are microseconds since the epoch in both schemas, so one SQL
-- implementation serves both databases. Items are a JSON array: they are
-- written once and only ever read with their order.
CREATE TABLE orders (
    id            text PRIMARY KEY,
    user_id       text NOT NULL,
    items         text NOT NULL,
    amount_cents  bigint NOT NULL CHECK (amount_cents >= 0),
    currency      text NOT NULL,
    payment_token text NOT NULL,
    status        text NOT NULL CHECK (status IN ('pending', 'compensating', 'confirmed', 'failed')),
    step          text NOT NULL,
    owes_release  boolean NOT NULL,
    owes_refund   boolean NOT NULL,
    reason        text NOT NULL,
    variant       text NOT NULL,
    version       bigint NOT NULL CHECK (version > 0),
    created_at    bigint NOT NULL,
    updated_at    bigint NOT NULL
);
-- The resumer's query: unfinished sagas.
CREATE INDEX orders_unfinished ON orders (id) WHERE status IN ('pending', 'compensating');

-- +goose Down
DROP TABLE orders;
