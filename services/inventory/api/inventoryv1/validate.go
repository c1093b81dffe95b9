package inventoryv1

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
)

// Shape checks run by the kit's validation interceptor before a handler,
// so a malformed request is INVALID_ARGUMENT before it reaches the
// database. Business rules (stock levels, reservation states) live in the
// service's domain and store packages.

// Limits of the API.
const (
	MaxPageSize         = 500
	MaxReservationItems = 100
	MaxBatchGet         = 100
	MaxOrderIDLen       = 128
)

// ValidID checks a product id is a UUID in canonical form.
func ValidID(field, id string) error {
	if id == "" {
		return fmt.Errorf("%s: is required", field)
	}
	u, err := uuid.Parse(id)
	if err != nil || u.String() != id {
		return fmt.Errorf("%s: %q is not a UUID like 0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d", field, truncate(id))
	}
	return nil
}

// ValidOrderID checks an order id is usable as an idempotency key; its
// format is the order service's business.
func ValidOrderID(id string) error {
	if id == "" {
		return errors.New("order_id: is required")
	}
	if len(id) > MaxOrderIDLen || !utf8.ValidString(id) {
		return fmt.Errorf("order_id: must be valid UTF-8 of at most %d bytes", MaxOrderIDLen)
	}
	if strings.TrimSpace(id) != id || strings.ContainsFunc(id, unicode.IsControl) {
		return fmt.Errorf("order_id: %q has surrounding spaces or control characters", truncate(id))
	}
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// Validate implements the kit's validator.
func (r *CreateProductRequest) Validate() error {
	switch {
	case r.GetSku() == "":
		return errors.New("sku: is required")
	case r.GetName() == "":
		return errors.New("name: is required")
	case r.GetPriceCents() < 0:
		return fmt.Errorf("price_cents: %d is negative", r.GetPriceCents())
	case r.GetInitialStock() < 0:
		return fmt.Errorf("initial_stock: %d is negative", r.GetInitialStock())
	}
	return nil
}

// Validate implements the kit's validator.
func (r *GetProductRequest) Validate() error { return ValidID("id", r.GetId()) }

// Validate implements the kit's validator.
func (r *BatchGetProductsRequest) Validate() error {
	ids := r.GetIds()
	if len(ids) == 0 || len(ids) > MaxBatchGet {
		return fmt.Errorf("ids: %d ids, want 1 to %d", len(ids), MaxBatchGet)
	}
	seen := make(map[string]bool, len(ids))
	for i, id := range ids {
		field := fmt.Sprintf("ids[%d]", i)
		if err := ValidID(field, id); err != nil {
			return err
		}
		if seen[id] {
			return fmt.Errorf("%s: %s is listed twice", field, id)
		}
		seen[id] = true
	}
	return nil
}

// Validate implements the kit's validator.
func (r *ListProductsRequest) Validate() error {
	if r.GetPageSize() < 0 || r.GetPageSize() > MaxPageSize {
		return fmt.Errorf("page_size: %d is outside [0, %d]", r.GetPageSize(), MaxPageSize)
	}
	return nil
}

// Validate implements the kit's validator.
func (r *AdjustStockRequest) Validate() error {
	if err := ValidID("product_id", r.GetProductId()); err != nil {
		return err
	}
	if r.GetDelta() == 0 {
		return errors.New("delta: must not be zero")
	}
	return nil
}

// Validate implements the kit's validator.
func (r *ReserveStockRequest) Validate() error {
	if err := ValidOrderID(r.GetOrderId()); err != nil {
		return err
	}
	n := len(r.GetItems())
	if n == 0 || n > MaxReservationItems {
		return fmt.Errorf("items: %d items, want 1 to %d", n, MaxReservationItems)
	}
	for i, it := range r.GetItems() {
		if err := ValidID(fmt.Sprintf("items[%d].product_id", i), it.GetProductId()); err != nil {
			return err
		}
		if it.GetQuantity() <= 0 {
			return fmt.Errorf("items[%d].quantity: %d is not positive", i, it.GetQuantity())
		}
	}
	return nil
}

// Validate implements the kit's validator.
func (r *ReleaseStockRequest) Validate() error { return ValidOrderID(r.GetOrderId()) }

// Validate implements the kit's validator.
func (r *CommitReservationRequest) Validate() error { return ValidOrderID(r.GetOrderId()) }
