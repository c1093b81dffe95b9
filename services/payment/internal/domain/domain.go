// Package domain holds the payment service's rules in Go types: what a
// valid charge is, which currencies exist, how the simulated processor
// decides to decline, and the errors callers must be able to tell apart.
// It knows nothing about protobuf, SQL or transports.
package domain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
)

// MaxAmount bounds one charge in minor units (100 million major units of
// a two-decimal currency): larger is a bug or abuse, never an order.
const MaxAmount int64 = 10_000_000_000

// Currencies are the ISO 4217 codes the service accepts, sorted.
var Currencies = []string{"AUD", "CAD", "CHF", "CZK", "DKK", "EUR", "GBP", "JPY", "NOK", "PLN", "SEK", "USD"}

// Status is where a payment is in its life. Only Captured holds money;
// Declined and Refunded are final.
type Status string

// The payment statuses.
const (
	Captured Status = "captured"
	Declined Status = "declined"
	Refunded Status = "refunded"
)

// Payment is one charge attempt for an order.
type Payment struct {
	ID             string
	OrderID        string
	IdempotencyKey string
	Amount         int64
	Currency       string
	Status         Status
	DeclineReason  string
	MethodLast4    string
	// MethodSHA256 tells whether a retry under the same idempotency key
	// uses the same payment method, without keeping the token: a SHA-256
	// of key and token, salted by the key so a card-like token cannot be
	// found from its hash by trying every card number. "" on payments
	// stored before it was recorded.
	MethodSHA256 string
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// ChargeRequest is what a caller asks to be charged.
type ChargeRequest struct {
	OrderID, IdempotencyKey, Currency, MethodToken string
	Amount                                         int64
}

// SameCharge reports whether p and q, charges under one idempotency key,
// ask for the same thing: order, amount, currency and payment method. A
// retry must repeat its request; one that changes any of them is a new
// charge that needs its own key.
func (p Payment) SameCharge(q Payment) bool {
	sameMethod := p.MethodSHA256 == "" || q.MethodSHA256 == "" || p.MethodSHA256 == q.MethodSHA256
	return p.OrderID == q.OrderID && p.Amount == q.Amount && p.Currency == q.Currency && sameMethod
}

// ValidationError is bad input a caller can fix.
type ValidationError struct {
	Field, Problem string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Problem: fmt.Sprintf(format, args...)}
}

// Normalize checks a charge request and upper-cases its currency.
func (r ChargeRequest) Normalize() (ChargeRequest, error) {
	r.Currency = strings.ToUpper(strings.TrimSpace(r.Currency))
	switch {
	case r.OrderID == "":
		return r, invalid("order_id", "is required")
	case r.IdempotencyKey == "":
		return r, invalid("idempotency_key", "is required")
	case r.MethodToken == "":
		return r, invalid("payment_method_token", "is required")
	case r.Amount <= 0:
		return r, invalid("amount", "%d is not positive", r.Amount)
	case r.Amount > MaxAmount:
		return r, invalid("amount", "%d is above the maximum of %d", r.Amount, MaxAmount)
	case !slices.Contains(Currencies, r.Currency):
		return r, invalid("currency", "%q is not one of %s", r.Currency, strings.Join(Currencies, ", "))
	}
	return r, nil
}

// Processor is the simulated card processor: it approves everything
// unless configured to decline, for tests and demos of the saga's
// compensation.
type Processor struct {
	// DeclineRate is the share of orders declined, 0 to 1.
	DeclineRate float64
	// DeclineCards are payment method tokens that always decline.
	DeclineCards []string
}

// Decide returns "" to approve or the reason for a decline. The rate is
// applied by a hash of the order id, not a random draw, so a retried or
// resumed charge of the same order gets the same answer in any process.
func (p Processor) Decide(r ChargeRequest) string {
	if slices.Contains(p.DeclineCards, r.MethodToken) {
		return "card_declined: the card ending " + Last4(r.MethodToken) + " always declines"
	}
	if p.DeclineRate > 0 && orderFraction(r.OrderID) < p.DeclineRate {
		return "do_not_honor: declined by the simulated decline rate"
	}
	return ""
}

// orderFraction maps an order id to [0, 1) uniformly and stably.
func orderFraction(orderID string) float64 {
	// SHA-256, not FNV: order ids differ only in their last characters,
	// and FNV's high bits are too even for that to spread.
	sum := sha256.Sum256([]byte(orderID))
	return float64(binary.BigEndian.Uint64(sum[:8])>>11) / (1 << 53)
}

// Last4 is the part of a payment method token safe to keep and show.
func Last4(token string) string {
	if len(token) <= 4 {
		return token
	}
	return token[len(token)-4:]
}

// NewPayment is the record of r decided by reason ("" approves). Its id
// is time-ordered, so listing by id lists by creation.
func NewPayment(r ChargeRequest, reason string, now time.Time) (Payment, error) {
	id, err := uuid.NewV7()
	if err != nil {
		return Payment{}, fmt.Errorf("payment id: %w", err)
	}
	st := Captured
	if reason != "" {
		st = Declined
	}
	// Microseconds: what both databases keep, so a payment reads back
	// exactly as it was written.
	now = now.UTC().Truncate(time.Microsecond)
	return Payment{ID: id.String(), OrderID: r.OrderID, IdempotencyKey: r.IdempotencyKey, Amount: r.Amount,
		Currency: r.Currency, Status: st, DeclineReason: reason, MethodLast4: Last4(r.MethodToken),
		MethodSHA256: methodHash(r.IdempotencyKey, r.MethodToken), CreatedAt: now, UpdatedAt: now}, nil
}

// methodHash is the hex SHA-256 of key and token, NUL-separated so no
// two pairs run together into the same input.
func methodHash(key, token string) string {
	sum := sha256.Sum256([]byte(key + "\x00" + token))
	return hex.EncodeToString(sum[:])
}

// NotFoundError is an order with no payment.
type NotFoundError struct{ OrderID string }

func (e *NotFoundError) Error() string { return fmt.Sprintf("order %q has no payment", e.OrderID) }

// KeyReusedError is an idempotency key already used for a different
// charge.
type KeyReusedError struct {
	Key      string
	Existing Payment
}

func (e *KeyReusedError) Error() string {
	return fmt.Sprintf("idempotency key %q was already used for order %q, %d %s, card ending %s; use a new key for a different charge",
		e.Key, e.Existing.OrderID, e.Existing.Amount, e.Existing.Currency, e.Existing.MethodLast4)
}

// AlreadyChargedError is a new charge for an order that already has a
// successful one.
type AlreadyChargedError struct{ Existing Payment }

func (e *AlreadyChargedError) Error() string {
	return fmt.Sprintf("order %q already has a %s payment %s under another idempotency key",
		e.Existing.OrderID, e.Existing.Status, e.Existing.ID)
}

// CancelledError is a charge for an order that was refunded before it
// was ever charged: the caller (the order saga, compensating a charge
// whose outcome it did not know) has given the order up, so a charge
// that lands afterwards is refused and never takes money.
type CancelledError struct{ OrderID string }

func (e *CancelledError) Error() string {
	return fmt.Sprintf("order %q was cancelled before it was charged; it can no longer be charged", e.OrderID)
}
