// Package storage opens a service's database from DATABASE_URL
// (postgres://... through pgxpool, or sqlite:///path through the cgo-free
// modernc.org/sqlite driver) and applies its embedded goose migrations.
// Services keep their own SQL; this package only owns connecting and
// migrating, the same way for every service.
package storage

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"
	"modernc.org/sqlite" // also registers the "sqlite" database/sql driver
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect is the database kind.
type Dialect string

// The supported dialects.
const (
	Postgres Dialect = "postgres"
	SQLite   Dialect = "sqlite"
)

// Location is a parsed DATABASE_URL.
type Location struct {
	Dialect Dialect
	// URL is the PostgreSQL connection string; Path the SQLite file.
	URL  string
	Path string
}

// Parse checks a DATABASE_URL. Its errors never repeat the URL, which may
// hold a password.
func Parse(raw string) (Location, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return Location{}, errors.New("not a URL")
	}
	switch u.Scheme {
	case "postgres", "postgresql":
		if _, err := pgxpool.ParseConfig(raw); err != nil {
			return Location{}, errors.New("not a valid PostgreSQL connection URL")
		}
		return Location{Dialect: Postgres, URL: raw}, nil
	case "sqlite":
		// sqlite:///abs/path.db: the host must be empty and the path absolute,
		// so a missing slash cannot silently put the database somewhere else.
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") || u.Path == "/" {
			return Location{}, errors.New("sqlite URLs look like sqlite:///absolute/path/to/file.db")
		}
		return Location{Dialect: SQLite, Path: u.Path}, nil
	}
	return Location{}, errors.New("scheme must be postgres:// or sqlite://")
}

// Redacted is the location without credentials, for logs.
func (l Location) Redacted() string {
	if l.Dialect == SQLite {
		return "sqlite://" + l.Path
	}
	u, err := url.Parse(l.URL)
	if err != nil {
		return "postgres://(unparseable)"
	}
	return u.Redacted()
}

// OpenPostgres returns a pool; it does not wait for the server, so
// readiness (not start-up) reports an unreachable database.
func OpenPostgres(ctx context.Context, rawURL string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(rawURL)
	if err != nil {
		return nil, errors.New("storage: DATABASE_URL is not a valid PostgreSQL URL")
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = 5 * time.Second
	}
	cfg.HealthCheckPeriod = 5 * time.Second
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("storage: postgres pool: %w", err)
	}
	return pool, nil
}

// OpenSQLite opens (creating if needed) the database file at path in WAL
// mode with a busy timeout, so readers never block the writer and writers
// queue instead of failing with SQLITE_BUSY. Transactions begin IMMEDIATE
// so read-then-write transactions cannot deadlock on lock upgrade.
func OpenSQLite(path string) (*sql.DB, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("storage: sqlite directory: %w", err)
	}
	dsn := "file:" + path + "?_txlock=immediate" +
		"&_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("storage: sqlite: %w", err)
	}
	// Keep as many idle connections as may be open: database/sql keeps two
	// by default, so under concurrent reads connections were closed and
	// reopened (and the hot statement re-prepared on each) all the time.
	// Idle ones still close after a minute, so an idle service holds few.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(8)
	db.SetConnMaxIdleTime(time.Minute)
	return db, nil
}

// MigratePostgres applies migrations to the pool's database, holding a
// PostgreSQL advisory lock so replicas starting together migrate once.
func MigratePostgres(ctx context.Context, pool *pgxpool.Pool, migrations fs.FS) error {
	db := stdlib.OpenDBFromPool(pool)
	defer db.Close()
	locker, err := lock.NewPostgresSessionLocker()
	if err != nil {
		return fmt.Errorf("storage: migration lock: %w", err)
	}
	return migrate(ctx, goose.DialectPostgres, db, migrations, goose.WithSessionLocker(locker))
}

// MigrateSQLite applies migrations to an SQLite database.
func MigrateSQLite(ctx context.Context, db *sql.DB, migrations fs.FS) error {
	return migrate(ctx, goose.DialectSQLite3, db, migrations)
}

func migrate(ctx context.Context, d goose.Dialect, db *sql.DB, migrations fs.FS, opts ...goose.ProviderOption) error {
	p, err := goose.NewProvider(d, db, migrations, append(opts, goose.WithDisableGlobalRegistry(true))...)
	if err != nil {
		return fmt.Errorf("storage: migrations: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("storage: applying migrations: %w", err)
	}
	return nil
}

// DB is a migrated database/sql handle on PostgreSQL (through pgx's
// stdlib adapter) or SQLite, for a store that runs one body of SQL on
// both.
type DB struct {
	*sql.DB
	// Dialect says which database it is.
	Dialect Dialect
	pool    *pgxpool.Pool
}

// OpenDB connects to the database loc names and applies the migrations in
// migrations' directory migrations/postgres or migrations/sqlite (what a
// store's `//go:embed migrations` holds).
func OpenDB(ctx context.Context, loc Location, migrations fs.FS) (*DB, error) {
	dir, err := fs.Sub(migrations, "migrations/"+string(loc.Dialect))
	if err != nil {
		return nil, fmt.Errorf("storage: migrations: %w", err)
	}
	switch loc.Dialect {
	case Postgres:
		pool, err := OpenPostgres(ctx, loc.URL)
		if err != nil {
			return nil, err
		}
		if err := MigratePostgres(ctx, pool, dir); err != nil {
			pool.Close()
			return nil, err
		}
		return &DB{DB: stdlib.OpenDBFromPool(pool), Dialect: Postgres, pool: pool}, nil
	case SQLite:
		db, err := OpenSQLite(loc.Path)
		if err != nil {
			return nil, err
		}
		if err := MigrateSQLite(ctx, db, dir); err != nil {
			_ = db.Close()
			return nil, err
		}
		return &DB{DB: db, Dialect: SQLite}, nil
	}
	return nil, fmt.Errorf("storage: unsupported dialect %q", loc.Dialect)
}

// Close closes the handle and, on PostgreSQL, its pool.
func (d *DB) Close() error {
	err := d.DB.Close()
	if d.pool != nil {
		d.pool.Close()
	}
	return err
}

// Queryer is what both *sql.DB and *sql.Tx offer, for reads that run in
// or outside a transaction.
type Queryer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// InTx runs fn in a transaction and commits it, or rolls it back when fn
// fails.
func (d *DB) InTx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := d.BeginTx(ctx, nil)
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

// LockKey holds a lock on key within namespace until tx ends, so
// transactions about one key (an order id) run one at a time even when
// they would touch no common row. On PostgreSQL it is a transaction
// advisory lock; SQLite needs none, its transactions begin IMMEDIATE and
// so run one at a time anyway.
func (d *DB) LockKey(ctx context.Context, tx *sql.Tx, namespace, key string) error {
	if d.Dialect != Postgres {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0))`, namespace, key); err != nil {
		return fmt.Errorf("store: lock %s %s: %w", namespace, key, err)
	}
	return nil
}

// Rebind rewrites a query's ? placeholders as $1, $2, ... on PostgreSQL,
// so one query text serves both databases.
func (d *DB) Rebind(query string) string {
	if d.Dialect != Postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// IsUniqueViolation reports whether err is a PostgreSQL or SQLite refusal
// of a row whose key (primary or unique) is taken, so one store serves
// both databases.
func IsUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "23505"
	}
	var se *sqlite.Error
	return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
}

// Micros is how stores keep times: microseconds since the epoch, what both
// databases hold exactly, so a row reads back as it was written.
func Micros(t time.Time) int64 { return t.UTC().UnixMicro() }

// FromMicros is the UTC time Micros stored.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }
