// Package store keeps payments behind one Store interface with a
// PostgreSQL and an SQLite implementation. Both run the same SQL through
// database/sql (PostgreSQL through pgx's stdlib adapter) and differ only
// in a small dialect: placeholders and how a unique violation looks.
//
// Charging twice is prevented by the schema, not by locks: a unique
// index on the idempotency key and a partial unique index allowing one
// successful payment per order. A charge is one INSERT; a request that
// loses a race reads the winner's row and answers from it. The contract
// test races both cases on both databases.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/payment/internal/domain"
)

// Store is the payment service's persistence.
type Store interface {
	// Charge records p, a decided charge attempt, unless its idempotency
	// key is already used: then the stored payment is returned if it was
	// for the same order, amount and currency, and *domain.KeyReusedError
	// otherwise. A new charge for an order that already has a captured or
	// refunded payment is *domain.AlreadyChargedError.
	Charge(ctx context.Context, p domain.Payment) (domain.Payment, error)
	// Refund marks the order's captured payment refunded. A refunded one,
	// or an order with only declined attempts, is returned unchanged; an
	// order with no payment is *domain.NotFoundError.
	Refund(ctx context.Context, orderID string, now time.Time) (domain.Payment, error)
	// Payment returns the order's successful payment, else its latest
	// declined attempt (*domain.NotFoundError).
	Payment(ctx context.Context, orderID string) (domain.Payment, error)
	// ListPayments returns up to limit payments with ids after after, in
	// id order.
	ListPayments(ctx context.Context, after string, limit int) ([]domain.Payment, error)
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
		return &SQL{db: stdlib.OpenDBFromPool(pool), d: postgres, closeExtra: pool.Close}, nil
	case storage.SQLite:
		db, err := storage.OpenSQLite(loc.Path)
		if err != nil {
			return nil, err
		}
		if err := storage.MigrateSQLite(ctx, db, sub("migrations/sqlite")); err != nil {
			_ = db.Close()
			return nil, err
		}
		return &SQL{db: db, d: sqliteDialect}, nil
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

// dialect is all that differs between the two databases.
type dialect struct {
	// dollar placeholders ($1) instead of ?.
	dollar bool
	unique func(error) bool
}

var (
	postgres = dialect{dollar: true, unique: func(err error) bool {
		var pe *pgconn.PgError
		return errors.As(err, &pe) && pe.Code == "23505"
	}}
	sqliteDialect = dialect{unique: func(err error) bool {
		var se *sqlite.Error
		return errors.As(err, &se) && (se.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || se.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY)
	}}
)

// q rewrites ? placeholders for the dialect.
func (d dialect) q(query string) string {
	if !d.dollar {
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

// SQL is the Store on PostgreSQL or SQLite.
type SQL struct {
	db         *sql.DB
	d          dialect
	closeExtra func()
}

func micros(t time.Time) int64 { return t.UTC().UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

type scanner interface{ Scan(...any) error }

const columns = `id, order_id, idempotency_key, amount, currency, status, decline_reason, method_last4, created_at, updated_at`

func scan(row scanner) (domain.Payment, error) {
	var p domain.Payment
	var st string
	var created, updated int64
	err := row.Scan(&p.ID, &p.OrderID, &p.IdempotencyKey, &p.Amount, &p.Currency, &st, &p.DeclineReason, &p.MethodLast4,
		&created, &updated)
	p.Status, p.CreatedAt, p.UpdatedAt = domain.Status(st), fromMicros(created), fromMicros(updated)
	return p, err
}

// one runs a query for at most one payment; found is false on no rows.
func (s *SQL) one(ctx context.Context, query string, args ...any) (p domain.Payment, found bool, err error) {
	p, err = scan(s.db.QueryRowContext(ctx, s.d.q(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Payment{}, false, nil
	}
	if err != nil {
		return domain.Payment{}, false, fmt.Errorf("store: read payment: %w", err)
	}
	return p, true, nil
}

func (s *SQL) byKey(ctx context.Context, key string) (domain.Payment, bool, error) {
	return s.one(ctx, `SELECT `+columns+` FROM payments WHERE idempotency_key = ?`, key)
}

// current is the order's successful payment, else its latest decline.
func (s *SQL) current(ctx context.Context, orderID string) (domain.Payment, bool, error) {
	return s.one(ctx, `SELECT `+columns+` FROM payments WHERE order_id = ?
		ORDER BY CASE WHEN status = 'declined' THEN 1 ELSE 0 END, id DESC LIMIT 1`, orderID)
}

// replay answers a request whose key is already stored.
func replay(existing, p domain.Payment) (domain.Payment, error) {
	if existing.OrderID == p.OrderID && existing.Amount == p.Amount && existing.Currency == p.Currency {
		return existing, nil
	}
	return domain.Payment{}, &domain.KeyReusedError{Key: p.IdempotencyKey, Existing: existing}
}

// Charge implements Store.
func (s *SQL) Charge(ctx context.Context, p domain.Payment) (domain.Payment, error) {
	if got, done, err := s.answered(ctx, p); done {
		return got, err
	}
	_, err := s.db.ExecContext(ctx, s.d.q(`INSERT INTO payments (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		p.ID, p.OrderID, p.IdempotencyKey, p.Amount, p.Currency, string(p.Status), p.DeclineReason, p.MethodLast4,
		micros(p.CreatedAt), micros(p.UpdatedAt))
	if err == nil {
		return p, nil
	}
	if !s.d.unique(err) {
		return domain.Payment{}, fmt.Errorf("store: insert payment: %w", err)
	}
	// Lost a race: to a request with the same key, or to another
	// successful charge of the same order. The winner has committed, so
	// its row is visible now.
	if got, done, err := s.answered(ctx, p); done {
		return got, err
	}
	return domain.Payment{}, errors.New("store: insert payment: unique violation but no conflicting row")
}

// answered says whether stored rows already decide the charge p: its key
// was used (replayed, or refused if for another charge), or its order has
// a successful payment under another key. The key is looked up both
// first and last, so a concurrent retry that committed in between is
// replayed rather than refused. Checking the order before inserting also
// keeps a declined attempt from being recorded for a paid order; the
// partial unique index covers the race.
func (s *SQL) answered(ctx context.Context, p domain.Payment) (domain.Payment, bool, error) {
	existing, found, err := s.byKey(ctx, p.IdempotencyKey)
	if err != nil {
		return domain.Payment{}, true, err
	}
	if found {
		got, err := replay(existing, p)
		return got, true, err
	}
	cur, found, err := s.current(ctx, p.OrderID)
	if err != nil {
		return domain.Payment{}, true, err
	}
	if !found || cur.Status == domain.Declined {
		return domain.Payment{}, false, nil
	}
	if cur.IdempotencyKey == p.IdempotencyKey {
		got, err := replay(cur, p)
		return got, true, err
	}
	return domain.Payment{}, true, &domain.AlreadyChargedError{Existing: cur}
}

// Refund implements Store. The conditional UPDATE is the whole state
// change, so concurrent refunds of one order are harmless.
func (s *SQL) Refund(ctx context.Context, orderID string, now time.Time) (domain.Payment, error) {
	if _, err := s.db.ExecContext(ctx, s.d.q(`UPDATE payments SET status = 'refunded', updated_at = ?
		WHERE order_id = ? AND status = 'captured'`), micros(now), orderID); err != nil {
		return domain.Payment{}, fmt.Errorf("store: refund: %w", err)
	}
	return s.Payment(ctx, orderID)
}

// Payment implements Store.
func (s *SQL) Payment(ctx context.Context, orderID string) (domain.Payment, error) {
	p, found, err := s.current(ctx, orderID)
	if err == nil && !found {
		err = &domain.NotFoundError{OrderID: orderID}
	}
	return p, err
}

// ListPayments implements Store.
func (s *SQL) ListPayments(ctx context.Context, after string, limit int) ([]domain.Payment, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT `+columns+` FROM payments WHERE id > ? ORDER BY id LIMIT ?`), after, limit)
	if err != nil {
		return nil, fmt.Errorf("store: list payments: %w", err)
	}
	defer rows.Close()
	var out []domain.Payment
	for rows.Next() {
		p, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list payments: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Ping implements Store with a query that reads the schema, so a missing
// table or an unreachable server fails.
func (s *SQL) Ping(ctx context.Context) error {
	var n int
	return s.db.QueryRowContext(ctx, `SELECT count(*) FROM payments WHERE 1 = 0`).Scan(&n)
}

// Close implements Store.
func (s *SQL) Close() {
	_ = s.db.Close()
	if s.closeExtra != nil {
		s.closeExtra()
	}
}
