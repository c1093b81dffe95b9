// Package store keeps orders and their saga state behind one Store
// interface with a PostgreSQL and an SQLite implementation. Both run the
// same SQL through database/sql (PostgreSQL through pgx's stdlib adapter)
// and differ only in placeholders, so saga persistence cannot drift
// between databases.
//
// Every change is a compare-and-swap on the order's version: the saga
// writes its state before each remote call, and a cancel or a second
// resumer racing it loses cleanly (*domain.ConflictError) instead of
// overwriting a step.
package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/order/internal/domain"
)

// Store is the order service's persistence.
type Store interface {
	// Create stores a new order, or returns *domain.DuplicateKeyError if
	// its user already has one with its idempotency key.
	Create(ctx context.Context, o domain.Order) error
	// Update stores o if the stored version is still o.Version, and
	// returns it with the version incremented; otherwise
	// *domain.ConflictError (or *domain.NotFoundError).
	Update(ctx context.Context, o domain.Order, now time.Time) (domain.Order, error)
	// Get returns one order or *domain.NotFoundError.
	Get(ctx context.Context, id string) (domain.Order, error)
	// ByIdempotencyKey returns the user's order placed with key, or
	// *domain.NotFoundError.
	ByIdempotencyKey(ctx context.Context, userID, key string) (domain.Order, error)
	// List returns up to limit orders with ids after after, in id order.
	List(ctx context.Context, after string, limit int) ([]domain.Order, error)
	// Unfinished returns up to limit pending or compensating orders with
	// ids after after, in id order.
	Unfinished(ctx context.Context, after string, limit int) ([]domain.Order, error)
	// Resumable is Unfinished narrowed to what a resumer may drive now:
	// orders last updated before idleSince whose resume backoff ended by
	// now.
	Resumable(ctx context.Context, after string, limit int, idleSince, now time.Time) ([]domain.Order, error)
	// Claim takes o for one resume if it is still at o's version and
	// resume attempts: it counts the attempt and puts off the next resume
	// until next. False means another resumer, or a saga, got there first.
	Claim(ctx context.Context, o domain.Order, next time.Time) (bool, error)
	// Ping reports whether the database answers.
	Ping(ctx context.Context) error
	// Close releases connections.
	Close()
}

//go:embed migrations
var migrations embed.FS

// Open connects to the database loc names and applies the migrations.
func Open(ctx context.Context, loc storage.Location) (Store, error) {
	db, err := storage.OpenDB(ctx, loc, migrations)
	if err != nil {
		return nil, err
	}
	return &SQL{db: db}, nil
}

// SQL is the Store on PostgreSQL or SQLite.
type SQL struct {
	db *storage.DB
}

const columns = `id, user_id, items, amount_cents, currency, payment_token, status, step, owes_release, owes_refund,
	reason, variant, version, created_at, updated_at, idempotency_key, resume_attempts`

type scanner interface{ Scan(...any) error }

func scan(row scanner) (domain.Order, error) {
	var (
		o                domain.Order
		items, st, step  string
		created, updated int64
		key              sql.NullString
	)
	err := row.Scan(&o.ID, &o.UserID, &items, &o.AmountCents, &o.Currency, &o.PaymentToken, &st, &step,
		&o.OwesRelease, &o.OwesRefund, &o.Reason, &o.Variant, &o.Version, &created, &updated, &key, &o.ResumeAttempts)
	if err != nil {
		return domain.Order{}, err
	}
	if err := json.Unmarshal([]byte(items), &o.Items); err != nil {
		return domain.Order{}, fmt.Errorf("store: order %s items: %w", o.ID, err)
	}
	o.Status, o.Step, o.CreatedAt, o.UpdatedAt = domain.Status(st), domain.Step(step), storage.FromMicros(created), storage.FromMicros(updated)
	o.IdempotencyKey = key.String
	return o, nil
}

// Create implements Store.
func (s *SQL) Create(ctx context.Context, o domain.Order) error {
	items, err := json.Marshal(o.Items)
	if err != nil {
		return fmt.Errorf("store: items: %w", err)
	}
	_, err = s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO orders (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		o.ID, o.UserID, string(items), o.AmountCents, o.Currency, o.PaymentToken, string(o.Status), string(o.Step),
		o.OwesRelease, o.OwesRefund, o.Reason, o.Variant, o.Version, storage.Micros(o.CreatedAt), storage.Micros(o.UpdatedAt),
		sql.NullString{String: o.IdempotencyKey, Valid: o.IdempotencyKey != ""}, o.ResumeAttempts)
	if o.IdempotencyKey != "" && storage.IsUniqueViolation(err) {
		return &domain.DuplicateKeyError{UserID: o.UserID, Key: o.IdempotencyKey}
	}
	if err != nil {
		return fmt.Errorf("store: insert order: %w", err)
	}
	return nil
}

// Update implements Store. Items are priced once, so they are rewritten
// with the rest; the WHERE on version is the compare-and-swap.
func (s *SQL) Update(ctx context.Context, o domain.Order, now time.Time) (domain.Order, error) {
	items, err := json.Marshal(o.Items)
	if err != nil {
		return domain.Order{}, fmt.Errorf("store: items: %w", err)
	}
	now = now.UTC().Truncate(time.Microsecond)
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE orders SET items = ?, amount_cents = ?, payment_token = ?, status = ?, step = ?,
		owes_release = ?, owes_refund = ?, reason = ?, version = version + 1, updated_at = ?
		WHERE id = ? AND version = ?`),
		string(items), o.AmountCents, o.PaymentToken, string(o.Status), string(o.Step), o.OwesRelease, o.OwesRefund, o.Reason,
		storage.Micros(now), o.ID, o.Version)
	if err != nil {
		return domain.Order{}, fmt.Errorf("store: update order: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return domain.Order{}, fmt.Errorf("store: update order: %w", err)
	}
	if n == 0 {
		if _, err := s.Get(ctx, o.ID); err != nil {
			return domain.Order{}, err
		}
		return domain.Order{}, &domain.ConflictError{ID: o.ID}
	}
	o.Version++
	o.UpdatedAt = now
	return o, nil
}

// Get implements Store.
func (s *SQL) Get(ctx context.Context, id string) (domain.Order, error) {
	o, err := scan(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+columns+` FROM orders WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Order{}, &domain.NotFoundError{ID: id}
	}
	if err != nil {
		return domain.Order{}, fmt.Errorf("store: read order: %w", err)
	}
	return o, nil
}

// ByIdempotencyKey implements Store.
func (s *SQL) ByIdempotencyKey(ctx context.Context, userID, key string) (domain.Order, error) {
	o, err := scan(s.db.QueryRowContext(ctx, s.db.Rebind(`SELECT `+columns+` FROM orders WHERE user_id = ? AND idempotency_key = ?`), userID, key))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Order{}, &domain.NotFoundError{Key: key}
	}
	if err != nil {
		return domain.Order{}, fmt.Errorf("store: read order by idempotency key: %w", err)
	}
	return o, nil
}

// List implements Store.
func (s *SQL) List(ctx context.Context, after string, limit int) ([]domain.Order, error) {
	return s.many(ctx, `SELECT `+columns+` FROM orders WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
}

// Unfinished implements Store.
func (s *SQL) Unfinished(ctx context.Context, after string, limit int) ([]domain.Order, error) {
	return s.many(ctx, `SELECT `+columns+` FROM orders WHERE status IN ('pending', 'compensating') AND id > ?
		ORDER BY id LIMIT ?`, after, limit)
}

// Resumable implements Store.
func (s *SQL) Resumable(ctx context.Context, after string, limit int, idleSince, now time.Time) ([]domain.Order, error) {
	return s.many(ctx, `SELECT `+columns+` FROM orders WHERE status IN ('pending', 'compensating') AND id > ?
		AND updated_at < ? AND resume_after <= ? ORDER BY id LIMIT ?`, after, limit, storage.Micros(idleSince), storage.Micros(now))
}

// Claim implements Store.
func (s *SQL) Claim(ctx context.Context, o domain.Order, next time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, s.db.Rebind(`UPDATE orders SET resume_attempts = resume_attempts + 1, resume_after = ?
		WHERE id = ? AND version = ? AND resume_attempts = ?`), storage.Micros(next), o.ID, o.Version, o.ResumeAttempts)
	if err != nil {
		return false, fmt.Errorf("store: claim order: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: claim order: %w", err)
	}
	return n == 1, nil
}

// many runs a query of orders whose arguments are after, then args, then
// the limit.
func (s *SQL) many(ctx context.Context, query, after string, limit int, args ...any) ([]domain.Order, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), append(append([]any{after}, args...), limit)...)
	if err != nil {
		return nil, fmt.Errorf("store: list orders: %w", err)
	}
	defer rows.Close()
	var out []domain.Order
	for rows.Next() {
		o, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list orders: %w", err)
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Ping implements Store with a query that reads the schema, so a missing
// table or an unreachable server fails.
func (s *SQL) Ping(ctx context.Context) error {
	var n int
	return s.db.QueryRowContext(ctx, `SELECT count(*) FROM orders WHERE 1 = 0`).Scan(&n)
}

// Close implements Store.
func (s *SQL) Close() { _ = s.db.Close() }
