// Package store keeps users and their activity events, behind one Store
// interface with two implementations: PostgreSQL (pgxpool) and SQLite
// (modernc.org/sqlite). Both pass the same contract test.
//
// Every change writes its event in the same transaction, and event ids
// increase in commit order, so a subscriber polling "id > cursor" sees each
// event exactly once.
package store

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/user/internal/domain"
)

// Errors the service maps to API codes.
var (
	ErrNotFound        = errors.New("user not found")
	ErrEmailTaken      = errors.New("email address already in use")
	ErrVersionConflict = errors.New("user was changed by someone else (stale version)")
)

// ListQuery selects a page of users in id (creation) order.
type ListQuery struct {
	// After is the last id of the previous page; "" starts at the beginning.
	After  string
	Limit  int
	Status domain.Status // "" means any
}

// EventQuery selects events in id order.
type EventQuery struct {
	AfterID int64
	Since   time.Time // zero means no lower time bound
	UserID  string    // "" means every user
	Limit   int
}

// Store is the user service's persistence.
type Store interface {
	// Create inserts u (ErrEmailTaken) and its created event.
	Create(ctx context.Context, u domain.User) error
	// Get returns one user (ErrNotFound).
	Get(ctx context.Context, id string) (domain.User, error)
	// Update replaces the stored user if its version is still expected
	// (ErrNotFound, ErrVersionConflict, ErrEmailTaken), with an event.
	Update(ctx context.Context, u domain.User, expected int64) error
	// Delete removes a user at version expected (0: any version) and
	// returns it as it was (ErrNotFound, ErrVersionConflict), with an event.
	Delete(ctx context.Context, id string, expected int64) (domain.User, error)
	// List returns a page of users.
	List(ctx context.Context, q ListQuery) ([]domain.User, error)
	// Events returns committed events after q.AfterID.
	Events(ctx context.Context, q EventQuery) ([]domain.Event, error)
	// LastEventID is the newest committed event id (0 when none).
	LastEventID(ctx context.Context) (int64, error)
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases connections.
	Close()
}

//go:embed migrations
var migrations embed.FS

// Open connects to the database loc names and applies the migrations.
func Open(ctx context.Context, loc storage.Location) (Store, error) {
	switch loc.Dialect {
	case storage.Postgres:
		pool, err := storage.OpenPostgres(ctx, loc.URL)
		if err != nil {
			return nil, err
		}
		if err := storage.MigratePostgres(ctx, pool, sub("migrations/postgres")); err != nil {
			pool.Close()
			return nil, err
		}
		return &Postgres{pool: pool}, nil
	case storage.SQLite:
		db, err := storage.OpenSQLite(loc.Path)
		if err != nil {
			return nil, err
		}
		if err := storage.MigrateSQLite(ctx, db, sub("migrations/sqlite")); err != nil {
			_ = db.Close()
			return nil, err
		}
		s, err := NewSQLite(ctx, db)
		if err != nil {
			_ = db.Close()
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("store: unsupported dialect %q", loc.Dialect)
}

func sub(dir string) fs.FS {
	f, err := fs.Sub(migrations, dir)
	if err != nil {
		panic(err) // the directory is embedded at build time
	}
	return f
}

// snapshot is the JSON form of a user inside an event, so events stay
// readable after the users row changes or goes.
type snapshot struct {
	ID                 string    `json:"id"`
	Email              string    `json:"email"`
	FullName           string    `json:"full_name"`
	Status             string    `json:"status"`
	EmailNotifications bool      `json:"email_notifications"`
	Timezone           string    `json:"timezone"`
	Language           string    `json:"language"`
	Version            int64     `json:"version"`
	CreatedAt          time.Time `json:"created_at"`
	UpdatedAt          time.Time `json:"updated_at"`
}

func toSnapshot(u domain.User) []byte {
	b, _ := json.Marshal(snapshot{u.ID, u.Email, u.FullName, string(u.Status), u.Preferences.EmailNotifications,
		u.Preferences.Timezone, u.Preferences.Language, u.Version, u.CreatedAt.UTC(), u.UpdatedAt.UTC()})
	return b
}

func fromSnapshot(b []byte) (domain.User, error) {
	var s snapshot
	if err := json.Unmarshal(b, &s); err != nil {
		return domain.User{}, fmt.Errorf("store: event payload: %w", err)
	}
	return domain.User{ID: s.ID, Email: s.Email, FullName: s.FullName, Status: domain.Status(s.Status),
		Preferences: domain.Preferences{EmailNotifications: s.EmailNotifications, Timezone: s.Timezone, Language: s.Language},
		Version:     s.Version, CreatedAt: s.CreatedAt.UTC(), UpdatedAt: s.UpdatedAt.UTC()}, nil
}

func limit(n int) int {
	if n <= 0 || n > 1000 {
		return 1000
	}
	return n
}
