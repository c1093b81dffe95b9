package paymentv1

import (
	"fmt"
	"unicode/utf8"

	"github.com/msctl/msctl/services/kit/validation"
)

// Shape checks run by the kit's validation interceptor before a handler,
// so a malformed request is INVALID_ARGUMENT before it reaches the
// database. Business rules (amount limits, known currencies) live in the
// service's domain package, which checks them again for callers that do
// not come through gRPC.

// Limits of the API.
const (
	MaxPageSize = 500
	MaxKeyLen   = 128
)

// ValidKey checks a required, bounded string used as a key.
func ValidKey(field, v string) error {
	if v == "" {
		return fmt.Errorf("%s: is required", field)
	}
	if len(v) > MaxKeyLen || !utf8.ValidString(v) {
		return fmt.Errorf("%s: must be valid UTF-8 of at most %d bytes", field, MaxKeyLen)
	}
	return nil
}

// Validate implements the kit's validator.
func (r *ChargeRequest) Validate() error {
	return validation.Join(ValidKey("order_id", r.GetOrderId()), ValidKey("idempotency_key", r.GetIdempotencyKey()),
		ValidKey("payment_method_token", r.GetPaymentMethodToken()))
}

// Validate implements the kit's validator.
func (r *RefundRequest) Validate() error { return ValidKey("order_id", r.GetOrderId()) }

// Validate implements the kit's validator.
func (r *GetPaymentRequest) Validate() error { return ValidKey("order_id", r.GetOrderId()) }

// Validate implements the kit's validator.
func (r *ListPaymentsRequest) Validate() error {
	if r.GetPageSize() < 0 || r.GetPageSize() > MaxPageSize {
		return fmt.Errorf("page_size: %d is outside [0, %d]", r.GetPageSize(), MaxPageSize)
	}
	return nil
}
