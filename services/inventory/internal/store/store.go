// Package store keeps products, their stock and reservations, behind one
// Store interface with a PostgreSQL and an SQLite implementation. Both
// run the same SQL through database/sql (PostgreSQL through pgx's stdlib
// adapter) and differ only in placeholders and row locks. One body of SQL
// means the stock rules cannot drift apart between the databases; the
// contract test runs it on both.
//
// Every stock change of a reservation happens in one transaction. Stock
// is taken with a conditional UPDATE (available >= quantity), so two
// concurrent reservations can never both take the last unit, and product
// rows are always updated in product id order, so they cannot deadlock.
// CHECK constraints in the schema back this up.
//
// Releasing an order that has no reservation records a marker that
// refuses any later reservation for it, so a ReserveStock still in flight
// when the saga compensated can never hold stock. Reserve and Release of
// one order run one at a time (SQLite transactions begin IMMEDIATE;
// PostgreSQL takes a transaction-scoped advisory lock on the order id).
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/services/inventory/internal/domain"
	"github.com/msctl/msctl/services/kit/storage"
)

// Store is the inventory service's persistence. Methods that change a
// reservation take now, so expiry is decided by the caller's clock and
// tests can move it.
type Store interface {
	// CreateProduct inserts p (domain.ErrSKUTaken).
	CreateProduct(ctx context.Context, p domain.Product) error
	// GetProduct returns one product (*domain.NotFoundError).
	GetProduct(ctx context.Context, id string) (domain.Product, error)
	// GetProducts returns the products of ids that exist, in any order,
	// with one query.
	GetProducts(ctx context.Context, ids []string) ([]domain.Product, error)
	// ListProducts returns up to limit products with ids after after, in
	// id order.
	ListProducts(ctx context.Context, after string, limit int) ([]domain.Product, error)
	// AdjustStock adds delta to a product's available units
	// (*domain.NotFoundError, *domain.InsufficientStockError).
	AdjustStock(ctx context.Context, id string, delta int64, now time.Time) (domain.Product, error)
	// Reserve holds items (normalised) for orderID until expiresAt, all
	// or nothing. An existing reservation with the same items is returned
	// unchanged; with other items it is *domain.ItemsMismatchError. A new
	// reservation for an order released before it had one is
	// *domain.CancelledError.
	Reserve(ctx context.Context, orderID string, items []domain.Item, now, expiresAt time.Time) (domain.Reservation, error)
	// Release returns a pending reservation's units to stock; released
	// and expired ones are returned unchanged; committed ones are
	// *domain.StateError. An order with no reservation is
	// *domain.NotFoundError, and is marked released, idempotently, so a
	// later Reserve for it is refused.
	Release(ctx context.Context, orderID string, now time.Time) (domain.Reservation, error)
	// Commit makes a pending reservation final; committed ones are
	// returned unchanged; released and expired ones are *domain.StateError.
	Commit(ctx context.Context, orderID string, now time.Time) (domain.Reservation, error)
	// Reservation returns one reservation as stored (*domain.NotFoundError).
	Reservation(ctx context.Context, orderID string) (domain.Reservation, error)
	// ExpireDue releases up to limit pending reservations whose expiry is
	// at or before now, and says how many it released.
	ExpireDue(ctx context.Context, now time.Time, limit int) (int, error)
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
	s := &SQL{db: db}
	if db.Dialect == storage.Postgres {
		s.forUpdate = " FOR UPDATE"
	}
	return s, nil
}

// SQL is the Store on PostgreSQL or SQLite.
type SQL struct {
	db *storage.DB
	// forUpdate locks a selected row to the end of the transaction on
	// PostgreSQL. SQLite needs none: its transactions begin IMMEDIATE and
	// so run one at a time.
	forUpdate string
}

type scanner interface{ Scan(...any) error }

const productColumns = `id, sku, name, price_cents, available, reserved, version, created_at, updated_at`

func scanProduct(row scanner) (domain.Product, error) {
	var p domain.Product
	var created, updated int64
	err := row.Scan(&p.ID, &p.SKU, &p.Name, &p.PriceCents, &p.Available, &p.Reserved, &p.Version, &created, &updated)
	p.CreatedAt, p.UpdatedAt = storage.FromMicros(created), storage.FromMicros(updated)
	return p, err
}

// CreateProduct implements Store.
func (s *SQL) CreateProduct(ctx context.Context, p domain.Product) error {
	_, err := s.db.ExecContext(ctx, s.db.Rebind(`INSERT INTO products (`+productColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`),
		p.ID, p.SKU, p.Name, p.PriceCents, p.Available, p.Reserved, p.Version, storage.Micros(p.CreatedAt), storage.Micros(p.UpdatedAt))
	if storage.IsUniqueViolation(err) {
		return domain.ErrSKUTaken
	}
	if err != nil {
		return fmt.Errorf("store: insert product: %w", err)
	}
	return nil
}

func (s *SQL) getProduct(ctx context.Context, q storage.Queryer, id string) (domain.Product, error) {
	p, err := scanProduct(q.QueryRowContext(ctx, s.db.Rebind(`SELECT `+productColumns+` FROM products WHERE id = ?`), id))
	if errors.Is(err, sql.ErrNoRows) {
		return domain.Product{}, &domain.NotFoundError{Kind: "product", ID: id}
	}
	if err != nil {
		return domain.Product{}, fmt.Errorf("store: get product: %w", err)
	}
	return p, nil
}

// GetProduct implements Store.
func (s *SQL) GetProduct(ctx context.Context, id string) (domain.Product, error) {
	return s.getProduct(ctx, s.db, id)
}

// GetProducts implements Store.
func (s *SQL) GetProducts(ctx context.Context, ids []string) ([]domain.Product, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	args := make([]any, len(ids))
	for i, id := range ids {
		args[i] = id
	}
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(ids)), ", ")
	return s.products(ctx, `SELECT `+productColumns+` FROM products WHERE id IN (`+marks+`)`, args...)
}

// ListProducts implements Store.
func (s *SQL) ListProducts(ctx context.Context, after string, limit int) ([]domain.Product, error) {
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	return s.products(ctx, `SELECT `+productColumns+` FROM products WHERE id > ? ORDER BY id LIMIT ?`, after, limit)
}

func (s *SQL) products(ctx context.Context, query string, args ...any) ([]domain.Product, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(query), args...)
	if err != nil {
		return nil, fmt.Errorf("store: list products: %w", err)
	}
	defer rows.Close()
	var out []domain.Product
	for rows.Next() {
		p, err := scanProduct(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list products: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// AdjustStock implements Store.
func (s *SQL) AdjustStock(ctx context.Context, id string, delta int64, now time.Time) (domain.Product, error) {
	if err := domain.CheckDelta(delta); err != nil {
		return domain.Product{}, err
	}
	var p domain.Product
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE products SET available = available + ?, version = version + 1, updated_at = ?
			WHERE id = ? AND available + ? BETWEEN 0 AND ?`), delta, storage.Micros(now), id, delta, domain.MaxUnits)
		if err != nil {
			return fmt.Errorf("store: adjust stock: %w", err)
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err != nil {
				return fmt.Errorf("store: adjust stock: %w", err)
			}
			cur, err := s.getProduct(ctx, tx, id)
			if err != nil {
				return err
			}
			if delta > 0 {
				return &domain.TooMuchStockError{ProductID: id, Available: cur.Available, Delta: delta}
			}
			return &domain.InsufficientStockError{ProductID: id, Requested: -delta, Available: cur.Available}
		}
		p, err = s.getProduct(ctx, tx, id)
		return err
	})
	return p, err
}

// errReserveRace is a concurrent ReserveStock for the same order that
// committed first; the loser rolls back and answers from its row.
var errReserveRace = errors.New("store: concurrent reservation for the same order")

// Reserve implements Store.
func (s *SQL) Reserve(ctx context.Context, orderID string, items []domain.Item, now, expiresAt time.Time) (domain.Reservation, error) {
	items, err := domain.NormalizeItems(items)
	if err != nil {
		return domain.Reservation{}, err
	}
	for attempt := 0; ; attempt++ {
		r, err := s.reserveOnce(ctx, orderID, items, now, expiresAt)
		if errors.Is(err, errReserveRace) && attempt == 0 {
			continue
		}
		return r, err
	}
}

func (s *SQL) reserveOnce(ctx context.Context, orderID string, items []domain.Item, now, expiresAt time.Time) (domain.Reservation, error) {
	var r domain.Reservation
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if err := s.db.LockKey(ctx, tx, "inventory", orderID); err != nil {
			return err
		}
		existing, found, err := s.loadReservation(ctx, tx, orderID, true)
		if err != nil {
			return err
		}
		if found {
			if !slices.Equal(existing.Items, items) {
				return &domain.ItemsMismatchError{OrderID: orderID}
			}
			r, err = s.expireIfDue(ctx, tx, existing, now)
			return err
		}
		var one int
		err = tx.QueryRowContext(ctx, s.db.Rebind(`SELECT 1 FROM released_orders WHERE order_id = ?`), orderID).Scan(&one)
		switch {
		case err == nil:
			return &domain.CancelledError{OrderID: orderID}
		case !errors.Is(err, sql.ErrNoRows):
			return fmt.Errorf("store: read released order: %w", err)
		}
		for _, it := range items {
			res, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE products SET available = available - ?, reserved = reserved + ?,
				version = version + 1, updated_at = ? WHERE id = ? AND available >= ?`),
				it.Quantity, it.Quantity, storage.Micros(now), it.ProductID, it.Quantity)
			if err != nil {
				return fmt.Errorf("store: reserve: %w", err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				if err != nil {
					return fmt.Errorf("store: reserve: %w", err)
				}
				p, err := s.getProduct(ctx, tx, it.ProductID)
				if err != nil {
					return err
				}
				return &domain.InsufficientStockError{ProductID: it.ProductID, Requested: it.Quantity, Available: p.Available}
			}
		}
		_, err = tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO reservations (order_id, state, expires_at, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?)`), orderID, string(domain.Pending), storage.Micros(expiresAt), storage.Micros(now), storage.Micros(now))
		if storage.IsUniqueViolation(err) {
			return errReserveRace
		}
		if err != nil {
			return fmt.Errorf("store: insert reservation: %w", err)
		}
		for _, it := range items {
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO reservation_items (order_id, product_id, quantity) VALUES (?, ?, ?)`),
				orderID, it.ProductID, it.Quantity); err != nil {
				return fmt.Errorf("store: insert reservation item: %w", err)
			}
		}
		r = domain.Reservation{OrderID: orderID, State: domain.Pending, Items: items,
			ExpiresAt: storage.FromMicros(storage.Micros(expiresAt)), CreatedAt: storage.FromMicros(storage.Micros(now)), UpdatedAt: storage.FromMicros(storage.Micros(now))}
		return nil
	})
	return r, err
}

// loadReservation reads a reservation and its items, locking its row to
// the end of tx when lock is set.
func (s *SQL) loadReservation(ctx context.Context, q storage.Queryer, orderID string, lock bool) (domain.Reservation, bool, error) {
	query := `SELECT state, expires_at, created_at, updated_at FROM reservations WHERE order_id = ?`
	if lock {
		query += s.forUpdate
	}
	r := domain.Reservation{OrderID: orderID}
	var st string
	var exp, created, updated int64
	err := q.QueryRowContext(ctx, s.db.Rebind(query), orderID).Scan(&st, &exp, &created, &updated)
	if errors.Is(err, sql.ErrNoRows) {
		return r, false, nil
	}
	if err != nil {
		return r, false, fmt.Errorf("store: get reservation: %w", err)
	}
	r.State, r.ExpiresAt, r.CreatedAt, r.UpdatedAt = domain.State(st), storage.FromMicros(exp), storage.FromMicros(created), storage.FromMicros(updated)
	rows, err := q.QueryContext(ctx, s.db.Rebind(`SELECT product_id, quantity FROM reservation_items WHERE order_id = ? ORDER BY product_id`), orderID)
	if err != nil {
		return r, false, fmt.Errorf("store: get reservation items: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var it domain.Item
		if err := rows.Scan(&it.ProductID, &it.Quantity); err != nil {
			return r, false, fmt.Errorf("store: get reservation items: %w", err)
		}
		r.Items = append(r.Items, it)
	}
	return r, true, rows.Err()
}

// setState moves a locked reservation to state and moves its units: back
// to available (release, expire) or out of stock for good (commit).
func (s *SQL) setState(ctx context.Context, tx *sql.Tx, r domain.Reservation, to domain.State, now time.Time) (domain.Reservation, error) {
	if _, err := tx.ExecContext(ctx, s.db.Rebind(`UPDATE reservations SET state = ?, updated_at = ? WHERE order_id = ?`),
		string(to), storage.Micros(now), r.OrderID); err != nil {
		return r, fmt.Errorf("store: update reservation: %w", err)
	}
	for _, it := range r.Items { // in product id order, like Reserve
		var err error
		if to == domain.Committed {
			_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE products SET reserved = reserved - ?, version = version + 1, updated_at = ?
				WHERE id = ?`), it.Quantity, storage.Micros(now), it.ProductID)
		} else {
			_, err = tx.ExecContext(ctx, s.db.Rebind(`UPDATE products SET available = available + ?, reserved = reserved - ?,
				version = version + 1, updated_at = ? WHERE id = ?`), it.Quantity, it.Quantity, storage.Micros(now), it.ProductID)
		}
		if err != nil {
			return r, fmt.Errorf("store: move stock: %w", err)
		}
	}
	r.State, r.UpdatedAt = to, storage.FromMicros(storage.Micros(now))
	return r, nil
}

// expireIfDue is the read-time half of expiry: a pending reservation past
// its expiry is released (as expired) before anyone acts on it, so a late
// Commit can never sell units the sweeper has not yet returned.
func (s *SQL) expireIfDue(ctx context.Context, tx *sql.Tx, r domain.Reservation, now time.Time) (domain.Reservation, error) {
	if r.State != domain.Pending || now.Before(r.ExpiresAt) {
		return r, nil
	}
	return s.setState(ctx, tx, r, domain.Expired, now)
}

// transition runs op on orderID's locked, expiry-checked reservation.
// With markAbsent, an order with no reservation is marked released (under
// the order lock, in the same transaction) before it is reported
// NotFound.
func (s *SQL) transition(ctx context.Context, orderID string, now time.Time, markAbsent bool,
	op func(tx *sql.Tx, r domain.Reservation) (domain.Reservation, error)) (domain.Reservation, error) {
	var out domain.Reservation
	var refused error
	err := s.db.InTx(ctx, func(tx *sql.Tx) error {
		if markAbsent {
			if err := s.db.LockKey(ctx, tx, "inventory", orderID); err != nil {
				return err
			}
		}
		r, found, err := s.loadReservation(ctx, tx, orderID, true)
		if err != nil {
			return err
		}
		if !found {
			if !markAbsent {
				return &domain.NotFoundError{Kind: "reservation", ID: orderID}
			}
			if _, err := tx.ExecContext(ctx, s.db.Rebind(`INSERT INTO released_orders (order_id, created_at) VALUES (?, ?)
				ON CONFLICT (order_id) DO NOTHING`), orderID, storage.Micros(now)); err != nil {
				return fmt.Errorf("store: mark order released: %w", err)
			}
			refused = &domain.NotFoundError{Kind: "reservation", ID: orderID}
			return nil // commit the marker
		}
		if r, err = s.expireIfDue(ctx, tx, r, now); err != nil {
			return err
		}
		out, err = op(tx, r)
		// A refusal is decided before op writes anything, and the
		// transaction still commits: an expiry found just now must stick
		// even though the caller's commit is refused.
		if _, ok := errors.AsType[*domain.StateError](err); ok {
			refused = err
			return nil
		}
		return err
	})
	if err == nil {
		err = refused
	}
	return out, err
}

// Release implements Store.
func (s *SQL) Release(ctx context.Context, orderID string, now time.Time) (domain.Reservation, error) {
	return s.transition(ctx, orderID, now, true, func(tx *sql.Tx, r domain.Reservation) (domain.Reservation, error) {
		switch r.State {
		case domain.Pending:
			return s.setState(ctx, tx, r, domain.Released, now)
		case domain.Committed:
			return r, &domain.StateError{OrderID: orderID, State: r.State, Op: "release"}
		}
		return r, nil // released or expired: the units are already back
	})
}

// Commit implements Store.
func (s *SQL) Commit(ctx context.Context, orderID string, now time.Time) (domain.Reservation, error) {
	return s.transition(ctx, orderID, now, false, func(tx *sql.Tx, r domain.Reservation) (domain.Reservation, error) {
		switch r.State {
		case domain.Pending:
			return s.setState(ctx, tx, r, domain.Committed, now)
		case domain.Committed:
			return r, nil
		}
		return r, &domain.StateError{OrderID: orderID, State: r.State, Op: "commit"}
	})
}

// Reservation implements Store.
func (s *SQL) Reservation(ctx context.Context, orderID string) (domain.Reservation, error) {
	r, found, err := s.loadReservation(ctx, s.db, orderID, false)
	if err == nil && !found {
		err = &domain.NotFoundError{Kind: "reservation", ID: orderID}
	}
	return r, err
}

// ExpireDue implements Store. Each reservation expires in its own
// transaction, so one sweep never holds many product rows at once.
func (s *SQL) ExpireDue(ctx context.Context, now time.Time, limit int) (int, error) {
	rows, err := s.db.QueryContext(ctx, s.db.Rebind(`SELECT order_id FROM reservations WHERE state = 'pending' AND expires_at <= ?
		ORDER BY expires_at LIMIT ?`), storage.Micros(now), limit)
	if err != nil {
		return 0, fmt.Errorf("store: due reservations: %w", err)
	}
	var due []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("store: due reservations: %w", err)
		}
		due = append(due, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: due reservations: %w", err)
	}
	n := 0
	for _, id := range due {
		expired := false
		err := s.db.InTx(ctx, func(tx *sql.Tx) error {
			r, found, err := s.loadReservation(ctx, tx, id, true)
			if err != nil || !found || r.State != domain.Pending || now.Before(r.ExpiresAt) {
				return err // gone, or changed since the query: nothing to do
			}
			_, err = s.setState(ctx, tx, r, domain.Expired, now)
			expired = err == nil
			return err
		})
		if err != nil {
			return n, err
		}
		if expired {
			n++
		}
	}
	return n, nil
}

// Ping implements Store with a query that reads the schema, so a missing
// table or an unreachable server fails.
func (s *SQL) Ping(ctx context.Context) error {
	var n int
	return s.db.QueryRowContext(ctx, `SELECT count(*) FROM products WHERE 1 = 0`).Scan(&n)
}

// Close implements Store.
func (s *SQL) Close() { _ = s.db.Close() }
