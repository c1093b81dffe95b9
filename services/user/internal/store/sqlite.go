package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/user/internal/domain"
)

// SQLite is the Store on an embedded SQLite file, the default for local
// runs. SQLite allows one writer at a time, which is also what keeps event
// ids in commit order.
type SQLite struct {
	db *sql.DB
	// get is prepared once: parsing the statement cost more than running
	// it, and GetUser is the hot path.
	get *sql.Stmt
}

// NewSQLite wraps a database that is already migrated.
func NewSQLite(ctx context.Context, db *sql.DB) (*SQLite, error) {
	get, err := db.PrepareContext(ctx, `SELECT `+sqliteColumns+` FROM users WHERE id = ?`)
	if err != nil {
		return nil, fmt.Errorf("store: prepare: %w", err)
	}
	return &SQLite{db: db, get: get}, nil
}

const sqliteColumns = `id, email, full_name, status, email_notifications, timezone, language, version, created_at, updated_at`

type scanner interface{ Scan(...any) error }

func scanSQLite(row scanner) (domain.User, error) {
	var u domain.User
	var st string
	var created, updated int64
	err := row.Scan(&u.ID, &u.Email, &u.FullName, &st, &u.Preferences.EmailNotifications,
		&u.Preferences.Timezone, &u.Preferences.Language, &u.Version, &created, &updated)
	u.Status = domain.Status(st)
	u.CreatedAt, u.UpdatedAt = storage.FromMicros(created), storage.FromMicros(updated)
	return u, err
}

func sqliteUnique(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE
}

func (s *SQLite) inTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: begin: %w", err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", err)
	}
	return nil
}

func sqliteEvent(ctx context.Context, tx *sql.Tx, kind domain.EventKind, u domain.User, at time.Time) error {
	if _, err := tx.ExecContext(ctx, `INSERT INTO user_events (kind, user_id, occurred_at, payload) VALUES (?, ?, ?, ?)`,
		string(kind), u.ID, storage.Micros(at), string(toSnapshot(u))); err != nil {
		return fmt.Errorf("store: insert event: %w", err)
	}
	return nil
}

// Create implements Store.
func (s *SQLite) Create(ctx context.Context, u domain.User) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+sqliteColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Email, u.FullName, string(u.Status), u.Preferences.EmailNotifications,
			u.Preferences.Timezone, u.Preferences.Language, u.Version, storage.Micros(u.CreatedAt), storage.Micros(u.UpdatedAt))
		if sqliteUnique(err) {
			return ErrEmailTaken
		}
		if err != nil {
			return fmt.Errorf("store: insert user: %w", err)
		}
		return sqliteEvent(ctx, tx, domain.Created, u, u.CreatedAt)
	})
}

// Get implements Store.
func (s *SQLite) Get(ctx context.Context, id string) (domain.User, error) {
	u, err := scanSQLite(s.get.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.User{}, ErrNotFound
	}
	if err != nil {
		return domain.User{}, fmt.Errorf("store: get user: %w", err)
	}
	return u, nil
}

func missingOrStale(ctx context.Context, tx *sql.Tx, id string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM users WHERE id = ?`, id).Scan(&n); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	if n == 0 {
		return ErrNotFound
	}
	return ErrVersionConflict
}

// Update implements Store.
func (s *SQLite) Update(ctx context.Context, u domain.User, expected int64) error {
	return s.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET email = ?, full_name = ?, status = ?, email_notifications = ?,
			timezone = ?, language = ?, version = ?, updated_at = ? WHERE id = ? AND version = ?`,
			u.Email, u.FullName, string(u.Status), u.Preferences.EmailNotifications,
			u.Preferences.Timezone, u.Preferences.Language, u.Version, storage.Micros(u.UpdatedAt), u.ID, expected)
		if sqliteUnique(err) {
			return ErrEmailTaken
		}
		if err != nil {
			return fmt.Errorf("store: update user: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return fmt.Errorf("store: update user: %w", err)
			}
			return missingOrStale(ctx, tx, u.ID)
		}
		return sqliteEvent(ctx, tx, domain.Updated, u, u.UpdatedAt)
	})
}

// Delete implements Store.
func (s *SQLite) Delete(ctx context.Context, id string, expected int64) (domain.User, error) {
	var old domain.User
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		var err error
		old, err = scanSQLite(tx.QueryRowContext(ctx, `DELETE FROM users WHERE id = ? AND (? = 0 OR version = ?) RETURNING `+sqliteColumns,
			id, expected, expected))
		if errors.Is(err, sql.ErrNoRows) {
			return missingOrStale(ctx, tx, id)
		}
		if err != nil {
			return fmt.Errorf("store: delete user: %w", err)
		}
		return sqliteEvent(ctx, tx, domain.Deleted, old, time.Now())
	})
	return old, err
}

// List implements Store.
func (s *SQLite) List(ctx context.Context, q ListQuery) ([]domain.User, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+sqliteColumns+` FROM users WHERE id > ? AND (? = '' OR status = ?) ORDER BY id LIMIT ?`,
		q.After, string(q.Status), string(q.Status), limit(q.Limit))
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	var users []domain.User
	for rows.Next() {
		u, err := scanSQLite(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		users = append(users, u)
	}
	return users, rows.Err()
}

// Events implements Store.
func (s *SQLite) Events(ctx context.Context, q EventQuery) ([]domain.Event, error) {
	var since int64 = -1 << 62
	if !q.Since.IsZero() {
		since = storage.Micros(q.Since)
	}
	rows, err := s.db.QueryContext(ctx, `SELECT id, kind, user_id, occurred_at, payload FROM user_events
		WHERE id > ? AND occurred_at >= ? AND (? = '' OR user_id = ?) ORDER BY id LIMIT ?`,
		q.AfterID, since, q.UserID, q.UserID, limit(q.Limit))
	if err != nil {
		return nil, fmt.Errorf("store: events: %w", err)
	}
	defer rows.Close()
	var out []domain.Event
	for rows.Next() {
		var e domain.Event
		var kind, payload string
		var at int64
		if err := rows.Scan(&e.ID, &kind, &e.UserID, &at, &payload); err != nil {
			return nil, fmt.Errorf("store: events: %w", err)
		}
		e.Kind, e.OccurredAt = domain.EventKind(kind), storage.FromMicros(at)
		if e.User, err = fromSnapshot([]byte(payload)); err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// LastEventID implements Store.
func (s *SQLite) LastEventID(ctx context.Context) (int64, error) {
	var id int64
	if err := s.db.QueryRowContext(ctx, `SELECT coalesce(max(id), 0) FROM user_events`).Scan(&id); err != nil {
		return 0, fmt.Errorf("store: last event: %w", err)
	}
	return id, nil
}

// Ping implements Store with a query that reads the schema, so a deleted
// or unreadable file fails rather than a fresh empty one answering.
func (s *SQLite) Ping(ctx context.Context) error {
	var n int
	return s.db.QueryRowContext(ctx, `SELECT count(*) FROM user_events WHERE id < 0`).Scan(&n)
}

// Close implements Store.
func (s *SQLite) Close() {
	_ = s.get.Close()
	_ = s.db.Close()
}
