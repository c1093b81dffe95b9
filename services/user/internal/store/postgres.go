package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/msctl/msctl/services/user/internal/domain"
)

// eventLock is the advisory lock key serialising event inserts. Holding it
// to commit makes identity values increase in commit order; without it a
// transaction that took id 7 could commit after one that took id 8 and a
// poller already past 8 would never see 7. User writes are rare enough
// that one lock is cheap.
const eventLock = 0x75736572 // "user"

// Postgres is the Store on PostgreSQL. pgx prepares and caches statements
// per connection by itself.
type Postgres struct{ pool *pgxpool.Pool }

// NewPostgres wraps a pool whose database is already migrated.
func NewPostgres(pool *pgxpool.Pool) *Postgres { return &Postgres{pool: pool} }

const pgColumns = `id::text, email, full_name, status, email_notifications, timezone, language, version, created_at, updated_at`

func scanPG(row pgx.Row) (domain.User, error) {
	var u domain.User
	var st string
	err := row.Scan(&u.ID, &u.Email, &u.FullName, &st, &u.Preferences.EmailNotifications,
		&u.Preferences.Timezone, &u.Preferences.Language, &u.Version, &u.CreatedAt, &u.UpdatedAt)
	u.Status = domain.Status(st)
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return u, err
}

func pgUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func (s *Postgres) inTx(ctx context.Context, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, s.pool, fn)
}

func pgEvent(ctx context.Context, tx pgx.Tx, kind domain.EventKind, u domain.User, at time.Time) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, int64(eventLock)); err != nil {
		return fmt.Errorf("store: event lock: %w", err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO user_events (kind, user_id, occurred_at, payload) VALUES ($1, $2, $3, $4)`,
		string(kind), u.ID, at, toSnapshot(u)); err != nil {
		return fmt.Errorf("store: insert event: %w", err)
	}
	return nil
}

// Create implements Store.
func (s *Postgres) Create(ctx context.Context, u domain.User) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO users (id, email, full_name, status, email_notifications, timezone, language, version, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			u.ID, u.Email, u.FullName, string(u.Status), u.Preferences.EmailNotifications,
			u.Preferences.Timezone, u.Preferences.Language, u.Version, u.CreatedAt, u.UpdatedAt)
		if pgUnique(err) {
			return ErrEmailTaken
		}
		if err != nil {
			return fmt.Errorf("store: insert user: %w", err)
		}
		return pgEvent(ctx, tx, domain.Created, u, u.CreatedAt)
	})
}

// Get implements Store.
func (s *Postgres) Get(ctx context.Context, id string) (domain.User, error) {
	u, err := scanPG(s.pool.QueryRow(ctx, `SELECT `+pgColumns+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return domain.User{}, ErrNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("store: get user: %w", err)
	}
	return u, nil
}

func (s *Postgres) missingOrStale(ctx context.Context, tx pgx.Tx, id string) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM users WHERE id = $1`, id).Scan(&n); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return ErrVersionConflict
}

// Update implements Store.
func (s *Postgres) Update(ctx context.Context, u domain.User, expected int64) error {
	return s.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE users SET email = $3, full_name = $4, status = $5, email_notifications = $6,
			timezone = $7, language = $8, version = $9, updated_at = $10 WHERE id = $1 AND version = $2`,
			u.ID, expected, u.Email, u.FullName, string(u.Status), u.Preferences.EmailNotifications,
			u.Preferences.Timezone, u.Preferences.Language, u.Version, u.UpdatedAt)
		if pgUnique(err) {
			return ErrEmailTaken
		}
		if err != nil {
			return fmt.Errorf("store: update user: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return s.missingOrStale(ctx, tx, u.ID)
		}
		return pgEvent(ctx, tx, domain.Updated, u, u.UpdatedAt)
	})
}

// Delete implements Store.
func (s *Postgres) Delete(ctx context.Context, id string, expected int64) (domain.User, error) {
	var old domain.User
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		old, err = scanPG(tx.QueryRow(ctx, `DELETE FROM users WHERE id = $1 AND ($2 = 0 OR version = $2) RETURNING `+pgColumns, id, expected))
		if errors.Is(err, pgx.ErrNoRows) {
			return s.missingOrStale(ctx, tx, id)
		}
		if err != nil {
			return fmt.Errorf("store: delete user: %w", err)
		}
		return pgEvent(ctx, tx, domain.Deleted, old, time.Now().UTC().Truncate(time.Microsecond))
	})
	return old, err
}

// List implements Store.
func (s *Postgres) List(ctx context.Context, q ListQuery) ([]domain.User, error) {
	after := q.After
	if after == "" {
		after = "00000000-0000-0000-0000-000000000000"
	}
	rows, err := s.pool.Query(ctx, `SELECT `+pgColumns+` FROM users WHERE id > $1 AND ($2 = '' OR status = $2) ORDER BY id LIMIT $3`,
		after, string(q.Status), limit(q.Limit))
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.User, error) { return scanPG(r) })
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return users, nil
}

// Events implements Store.
func (s *Postgres) Events(ctx context.Context, q EventQuery) ([]domain.Event, error) {
	var since *time.Time
	if !q.Since.IsZero() {
		since = &q.Since
	}
	rows, err := s.pool.Query(ctx, `SELECT id, kind, user_id::text, occurred_at, payload FROM user_events
		WHERE id > $1 AND ($2::timestamptz IS NULL OR occurred_at >= $2) AND ($3 = '' OR user_id::text = $3)
		ORDER BY id LIMIT $4`, q.AfterID, since, q.UserID, limit(q.Limit))
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (domain.Event, error) {
		var e domain.Event
		var kind string
		var payload []byte
		if err := r.Scan(&e.ID, &kind, &e.UserID, &e.OccurredAt, &payload); err != nil {
			return e, fmt.Errorf("store: events: %w", err)
		}
		e.Kind, e.OccurredAt = domain.EventKind(kind), e.OccurredAt.UTC()
		var err error
		e.User, err = fromSnapshot(payload)
		return e, err
	})
}

// LastEventID implements Store.
func (s *Postgres) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.pool.QueryRow(ctx, `SELECT coalesce(max(id), 0) FROM user_events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: last event: %w", err)
	}
	return id, nil
}

// Ping implements Store with a real query: a pool can hand out an idle
// connection to a database that no longer accepts new sessions.
func (s *Postgres) Ping(ctx context.Context) error {
	var one int
	return s.pool.QueryRow(ctx, `SELECT 1`).Scan(&one)
}

// Close implements Store.
func (s *Postgres) Close() { s.pool.Close() }
