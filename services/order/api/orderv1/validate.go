package orderv1

import (
	"fmt"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/msctl/msctl/services/kit/validation"
)

// Shape checks run by the kit's validation interceptor before a handler,
// so a malformed request is INVALID_ARGUMENT before the saga starts and
// nothing is stored. Rules that need other services (the user exists, the
// product exists, stock suffices) are the saga's.

// Limits of the API.
const (
	MaxPageSize = 500
	MaxKeyLen   = 128
	MaxItems    = 100
	// MaxQuantity bounds one item so a total cannot overflow.
	MaxQuantity = 10000
)

// ValidKey checks a required, bounded string used as an id.
func ValidKey(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s: is required", field)
	}
	if len(v) > MaxKeyLen || !utf8.ValidString(v) {
		return fmt.Errorf("%s: must be valid UTF-8 of at most %d bytes", field, MaxKeyLen)
	}
	return nil
}

// ValidUUID checks a required id of another service (a user, a product)
// is a UUID in canonical form, so a malformed one is refused here instead
// of failing a stored order in the saga.
func ValidUUID(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s: is required", field)
	}
	if u, err := uuid.Parse(v); err != nil || u.String() != v {
		if len(v) > 64 {
			v = v[:64] + "..."
		}
		return fmt.Errorf("%s: %q is not a UUID like 0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d", field, v)
	}
	return nil
}

// Validate implements the kit's validator.
func (r *CreateOrderRequest) Validate() error {
	errs := []error{ValidUUID("user_id", r.GetUserId()), ValidKey("payment_method_token", r.GetPaymentMethodToken())}
	if k := r.GetIdempotencyKey(); k != "" {
		errs = append(errs, ValidKey("idempotency_key", k))
	}
	if n := len(r.GetItems()); n == 0 || n > MaxItems {
		errs = append(errs, fmt.Errorf("items: %d items, want 1 to %d", n, MaxItems))
	}
	seen := map[string]bool{}
	for i, it := range r.GetItems() {
		if err := ValidUUID(fmt.Sprintf("items[%d].product_id", i), it.GetProductId()); err != nil {
			errs = append(errs, err)
		} else if seen[it.GetProductId()] {
			errs = append(errs, fmt.Errorf("items[%d].product_id: %q is listed twice", i, it.GetProductId()))
		}
		seen[it.GetProductId()] = true
		if q := it.GetQuantity(); q <= 0 || q > MaxQuantity {
			errs = append(errs, fmt.Errorf("items[%d].quantity: %d is outside [1, %d]", i, q, MaxQuantity))
		}
	}
	return validation.Join(errs...)
}

// Validate implements the kit's validator.
func (r *GetOrderRequest) Validate() error { return ValidKey("id", r.GetId()) }

// Validate implements the kit's validator.
func (r *CancelOrderRequest) Validate() error { return ValidKey("id", r.GetId()) }

// Validate implements the kit's validator.
func (r *ListOrdersRequest) Validate() error {
	if r.GetPageSize() < 0 || r.GetPageSize() > MaxPageSize {
		return fmt.Errorf("page_size: %d is outside [0, %d]", r.GetPageSize(), MaxPageSize)
	}
	return nil
}
