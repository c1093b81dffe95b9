-- +goose Up
CREATE TABLE users (
    id                  uuid PRIMARY KEY,
    email               text NOT NULL,
    full_name           text NOT NULL,
    status              text NOT NULL CHECK (status IN ('active', 'inactive', 'suspended')),
    email_notifications boolean NOT NULL,
    timezone            text NOT NULL,
    language            text NOT NULL,
    version             bigint NOT NULL CHECK (version > 0),
    created_at          timestamptz NOT NULL,
    updated_at          timestamptz NOT NULL
);
CREATE UNIQUE INDEX users_email_key ON users (email);
CREATE INDEX users_status_id ON users (status, id);

-- Ids are handed out under an advisory lock held to commit (see
-- postgres.go), so they increase in commit order and a reader's cursor
-- never skips an event that commits late.
CREATE TABLE user_events (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    user_id     uuid NOT NULL,
    occurred_at timestamptz NOT NULL,
    payload     jsonb NOT NULL
);
CREATE INDEX user_events_occurred_at ON user_events (occurred_at);

-- +goose Down
DROP TABLE user_events;
DROP TABLE users;
