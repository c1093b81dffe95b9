// Package store keeps payments behind one Store interface with a
// PostgreSQL and an SQLite implementation. Both run the same SQL through
// database/sql (PostgreSQL through pgx's stdlib adapter) and differ only
// in placeholders and per-order locks, both in storage.DB.
//
// Charging twice is prevented by the schema, not by locks: a unique
// index on the idempotency key and a partial unique index allowing one
// successful payment per order. A charge is one INSERT; a request that
// loses a race reads the winner's row and answers from it. The contract
// test races both cases on both databases.
//
// An order refunded before it was ever charged is voided: a marker row
// that refuses any later new charge, so a charge still in flight when the
// saga compensated can never take money. Charge and Refund of one order
// run one at a time (SQLite transactions begin IMMEDIATE; PostgreSQL
// takes a transaction-scoped advisory lock on the order id), so the
// check for the marker and the charge cannot interleave with a refund.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/payment/internal/domain"
)

// Store is the payment service's persistence.
type Store interface {
	// Charge records p, a decided charge attempt, unless its idempotency
	// key is already used: then the stored payment is returned if it was
	// for the same order, amount and currency, and *domain.KeyReusedError
	// otherwise. A new charge for an order that already has a captured or
	// refunded payment is *domain.AlreadyChargedError. A new charge for a
	// voided order (see Refund) is *domain.CancelledError.
	Charge(ctx context.Context, p domain.Payment) (domain.Payment, error)
	// Refund marks the order's captured payment refunded. A refunded one,
	// or an order with only declined attempts, is returned unchanged; an
	// order with no payment is *domain.NotFoundError, and is voided,
	// idempotently: any later new charge of it is refused.
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

type scanner interface{ Scan(...any) error }

const columns = `id, order_id, idempotency_key, amount, currency, status, decline_reason, method_last4, created_at, updated_at,
	method_sha256`

func scan(row scanner) (domain.Payment, error) {
	var p domain.Payment
	var st string
	var created, updated int64
	err := row.Scan(&p.ID, &p.OrderID, &p.IdempotencyKey, &p.Amount, &p.Currency, &st, &p.DeclineReason, &p.MethodLast4,
		&created, &updated, &p.MethodSHA256)
	p.Status, p.CreatedAt, p.UpdatedAt = domain.Status(st), storage.FromMicros(created), storage.FromMicros(updated)
	return p, err
}

// one runs a query for at most one payment; found is false on no rows.
func (s *SQL) one(ctx context.Context, q storage.Queryer, query string, args ...any) (p domain.Payment, found bool, err error) {
	p, err = scan(q.QueryRowContext(ctx, s.db.Rebind(query), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Payment{}, false, nil
	}
	if err != nil {
		return domain.Payment{}, false, fmt.Errorf("store: read payment: %w", err)
	}
	return p, true, nil
}

func (s *SQL) byKey(ctx context.Context, q storage.Queryer, key string) (domain.Payment, bool, error) {
	return s.one(ctx, q, `SELECT `+columns+` FROM payments WHERE idempotency_key = ?`, key)
}

// current is the order's successful payment, else its latest decline.
func (s *SQL) current(ctx context.Context, q storage.Queryer, orderID string) (domain.Payment, bool, error) {
	return s.one(ctx, q, `SELECT `+columns+` FROM payments WHERE order_id = ?
		ORDER BY CASE WHEN status = 'declined' THEN 1 ELSE 0 END, id DESC LIMIT 1`, orderID)
}

// replay answers a request whose key is already stored.
func replay(existing, p domain.Payment) (domain.Payment, error) {
	if existing.SameCharge(p) {
		return existing, nil
	}
	return domain.Payment{}, &domain.KeyReusedError{Key: p.IdempotencyKey, Existing: existing}
}

// Charge implements Store.
func (s *SQL) Charge(ctx context.Context, p domain.Payment) (domain.Payment, error) {
	var got domain.Payment
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.db.LockKey(ctx, tx, "payment", p.OrderID); err != nil {
			return err
		}
		var done bool
		var err error
		if got, done, err = s.answered(ctx, tx, p); done {
			return err
		}
		if _, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO payments (`+columns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
			p.ID, p.OrderID, p.IdempotencyKey, p.Amount, p.Currency, string(p.Status), p.DeclineReason, p.MethodLast4,
			storage.Micros(p.CreatedAt), storage.Micros(p.UpdatedAt), p.MethodSHA256); err != nil {
			return fmt.Errorf("store: insert payment: %w", err)
		}
		got = p
		return nil
	})
	if err == nil {
		return got, nil
	}
	if !storage.IsUniqueViolation(err) {
		return domain.Payment{}, err
	}
	// Lost a race: to a request with the same key (possibly for another
	// order, which the order lock does not cover), or to another
	// successful charge of the same order. The winner has committed, so
	// its row is visible now.
	if got, done, err := s.answered(ctx, s.db, p); done {
		return got, err
	}
	return domain.Payment{}, errors.New("store: insert payment: unique violation but no conflicting row")
}

// answered says whether stored rows already decide the charge p: its key
// was used (replayed, or refused if for another charge), its order was
// voided by a refund before any charge, or its order has a successful
// payment under another key. The key is looked up both
// first and last, so a concurrent retry that committed in between is
// replayed rather than refused. Checking the order before inserting also
// keeps a declined attempt from being recorded for a paid order; the
// partial unique index covers the race.
func (s *SQL) answered(ctx context.Context, q storage.Queryer, p domain.Payment) (domain.Payment, bool, error) {
	existing, found, err := s.byKey(ctx, q, p.IdempotencyKey)
	if err != nil {
		return domain.Payment{}, true, err
	}
	if found {
		got, err := replay(existing, p)
		return got, true, err
	}
	var one int
	err = q.QueryRowContext(ctx, s.db.Rebind(`SELECT 1 FROM voided_orders WHERE order_id = ?`), p.OrderID).Scan(&one)
	switch {
	case err == nil:
		return domain.Payment{}, true, &domain.CancelledError{OrderID: p.OrderID}
	case !errors.Is(err, sql.ErrNoRows):
		return domain.Payment{}, true, fmt.Errorf("store: read voided order: %w", err)
	}
	cur, found, err := s.current(ctx, q, p.OrderID)
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

// Refund implements Store. The conditional UPDATE and the voiding insert
// are idempotent, so repeated or concurrent refunds of one order are
// harmless; the order lock keeps a charge from landing between the check
// for a successful payment and the void.
func (s *SQL) Refund(ctx context.Context, orderID string, now time.Time) (domain.Payment, error) {
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.db.LockKey(ctx, tx, "payment", orderID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE payments SET status = 'refunded', updated_at = ?
			WHERE order_id = ? AND status = 'captured'`), storage.Micros(now), orderID); err != nil {
			return fmt.Errorf("store: refund: %w", err)
		}
		_, found, err := s.current(ctx, tx, orderID)
		if err != nil || found {
			return err
		}
		// No charge at all: void the order, so a charge still in flight
		// can never land. (An order with only declines keeps them: its
		// keys replay the declines, and a new key may try again.)
		if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO voided_orders (order_id, created_at) VALUES (?, ?)
			ON CONFLICT (order_id) DO NOTHING`), orderID, storage.Micros(now)); err != nil {
			return fmt.Errorf("store: void order: %w", err)
		}
		return nil
	})
	if err != nil {
		return domain.Payment{}, err
	}
	return s.Payment(ctx, orderID)
}

// Payment implements Store.
func (s *SQL) Payment(ctx context.Context, orderID string) (domain.Payment, error) {
	p, found, err := s.current(ctx, s.db, orderID)
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
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT `+columns+` FROM payments WHERE id > ? ORDER BY id LIMIT ?`), after, limit)
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
func (s *SQL) Close() { _ = s.db.Close() }
