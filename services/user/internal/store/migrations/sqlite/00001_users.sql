-- +goose Up
-- Times are microseconds since the epoch (PostgreSQL's precision), so
-- both stores return identical values.
CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    email               TEXT NOT NULL,
    full_name           TEXT NOT NULL,
    status              TEXT NOT NULL CHECK (status IN ('active', 'inactive', 'suspended')),
    email_notifications INTEGER NOT NULL,
    timezone            TEXT NOT NULL,
    language            TEXT NOT NULL,
    version             INTEGER NOT NULL CHECK (version > 0),
    created_at          INTEGER NOT NULL,
    updated_at          INTEGER NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_status_id ON users (status, id);

-- AUTOINCREMENT: ids are never reused, even after the newest row is
-- deleted, so a subscriber's cursor stays valid. SQLite has one writer at
-- a time, so ids increase in commit order.
CREATE TABLE user_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    kind        TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    occurred_at INTEGER NOT NULL,
    payload     TEXT NOT NULL
);
CREATE INDEX user_events_occurred_at ON user_events (occurred_at);

-- +goose Down
DROP TABLE user_events;
DROP TABLE users;
