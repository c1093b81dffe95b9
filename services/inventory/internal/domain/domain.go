// Package domain holds the inventory service's rules in Go types: what a
// valid product and reservation item are, the reservation states and the
// errors callers must be able to tell apart. It knows nothing about
// protobuf, SQL or transports.
package domain

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Product is one thing for sale. Available units can be reserved;
// reserved units are held by pending reservations. Neither is ever
// negative, and the stores enforce that too.
type Product struct {
	ID         string
	SKU        string
	Name       string
	PriceCents int64
	Available  int64
	Reserved   int64
	Version    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Limits on amounts, so that no sum of stock, reservations or order
// totals can overflow an int64 and a price is never beyond what the
// payment service can charge.
const (
	// MaxUnits bounds a product's stock, a stock change and a reserved
	// quantity: far beyond any real stock.
	MaxUnits int64 = 1_000_000_000
	// MaxPriceCents is the payment service's largest charge.
	MaxPriceCents int64 = 10_000_000_000
)

// CheckDelta refuses a stock change of zero or beyond MaxUnits either way.
func CheckDelta(delta int64) error {
	if delta == 0 || delta > MaxUnits || delta < -MaxUnits {
		return invalid("delta", "%d is outside [-%d, %d] or zero", delta, MaxUnits, MaxUnits)
	}
	return nil
}

// TooMuchStockError refuses a change that would take a product's stock
// above MaxUnits.
type TooMuchStockError struct {
	ProductID        string
	Available, Delta int64
}

func (e *TooMuchStockError) Error() string {
	return fmt.Sprintf("delta: adding %d to the %d available units of product %s exceeds the maximum of %d",
		e.Delta, e.Available, e.ProductID, MaxUnits)
}

// ValidationError is bad input a caller can fix.
type ValidationError struct {
	Field, Problem string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// NewProduct checks and normalises a new product (trimmed SKU and name)
// and gives it a time-ordered id, so listing by id lists by creation.
func NewProduct(sku, name string, priceCents, stock int64, now time.Time) (Product, error) {
	sku, name = strings.TrimSpace(sku), strings.TrimSpace(name)
	switch {
	case sku == "" || utf8.RuneCountInString(sku) > 64:
		return Product{}, invalid("sku", "must be 1 to 64 characters")
	case name == "" || utf8.RuneCountInString(name) > 200:
		return Product{}, invalid("name", "must be 1 to 200 characters")
	case priceCents < 0 || priceCents > MaxPriceCents:
		return Product{}, invalid("price_cents", "%d is outside [0, %d]", priceCents, MaxPriceCents)
	case stock < 0 || stock > MaxUnits:
		return Product{}, invalid("initial_stock", "%d is outside [0, %d]", stock, MaxUnits)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Product{}, fmt.Errorf("product id: %w", err)
	}
	// Microseconds: what both databases keep, so a product reads back
	// exactly as it was written.
	now = now.UTC().Truncate(time.Microsecond)
	return Product{ID: id.String(), SKU: sku, Name: name, PriceCents: priceCents, Available: stock,
		Version: 1, CreatedAt: now, UpdatedAt: now}, nil
}

// Item is a quantity of one product in a reservation.
type Item struct {
	ProductID string
	Quantity  int64
}

// NormalizeItems adds up duplicate products and sorts by product id. The
// sorted form is what a repeated ReserveStock is compared against, and
// the order in which stores lock product rows, so two reservations of
// the same products can never deadlock.
func NormalizeItems(items []Item) ([]Item, error) {
	if len(items) == 0 {
		return nil, invalid("items", "at least one item is required")
	}
	sum := map[string]int64{}
	for i, it := range items {
		if it.Quantity <= 0 || it.Quantity > MaxUnits {
			return nil, invalid(fmt.Sprintf("items[%d].quantity", i), "%d is outside [1, %d]", it.Quantity, MaxUnits)
		}
		if it.ProductID == "" {
			return nil, invalid(fmt.Sprintf("items[%d].product_id", i), "is required")
		}
		sum[it.ProductID] += it.Quantity
	}
	out := make([]Item, 0, len(sum))
	for id, q := range sum {
		out = append(out, Item{ProductID: id, Quantity: q})
	}
	slices.SortFunc(out, func(a, b Item) int { return cmp.Compare(a.ProductID, b.ProductID) })
	return out, nil
}

// State is where a reservation is in its life. Only pending reservations
// hold stock that can still come back; the other states are final.
type State string

// The reservation states.
const (
	Pending   State = "pending"
	Committed State = "committed"
	Released  State = "released"
	Expired   State = "expired"
)

// Reservation is the stock held for one order; the order id is its key.
type Reservation struct {
	OrderID   string
	State     State
	Items     []Item // normalised
	ExpiresAt time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
}

// NotFoundError says which thing does not exist.
type NotFoundError struct {
	Kind, ID string // Kind is "product" or "reservation"
}

func (e *NotFoundError) Error() string {
	if e.Kind == "reservation" {
		return fmt.Sprintf("order %q has no reservation", e.ID)
	}
	return fmt.Sprintf("%s %s not found", e.Kind, e.ID)
}

// InsufficientStockError names the product that cannot cover a request.
type InsufficientStockError struct {
	ProductID            string
	Requested, Available int64
}

func (e *InsufficientStockError) Error() string {
	return fmt.Sprintf("insufficient stock for product %s: requested %d, available %d", e.ProductID, e.Requested, e.Available)
}

// StateError is an operation a reservation's state forbids, such as
// releasing a committed reservation.
type StateError struct {
	OrderID string
	State   State
	Op      string
}

func (e *StateError) Error() string {
	return fmt.Sprintf("cannot %s the reservation of order %q: it is %s", e.Op, e.OrderID, e.State)
}

// ItemsMismatchError is a repeated ReserveStock for an order whose
// reservation holds other items: an idempotency key reused for a
// different request.
type ItemsMismatchError struct{ OrderID string }

func (e *ItemsMismatchError) Error() string {
	return fmt.Sprintf("order %q already has a reservation with different items; use a new order id", e.OrderID)
}

// ErrSKUTaken is a CreateProduct with a SKU already in use.
var ErrSKUTaken = fmt.Errorf("a product with this sku already exists")

// CancelledError is a ReserveStock for an order whose stock was released
// before it was ever reserved: the caller (the order saga, compensating a
// reservation whose outcome it did not know) has given the order up, so a
// reservation that lands afterwards is refused and holds nothing.
type CancelledError struct{ OrderID string }

func (e *CancelledError) Error() string {
	return fmt.Sprintf("order %q was cancelled before its stock was reserved; it can no longer reserve stock", e.OrderID)
}
