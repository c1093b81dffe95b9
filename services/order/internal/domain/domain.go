// Package domain holds the order service's rules in Go types: an order,
// its items, its status and the state of its saga (the step reached and
// the compensations owed). Every transition is a method here, so the saga
// and the stores cannot invent states. It knows nothing about protobuf,
// SQL or other services.
package domain

import (
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Status is where an order is in its life.
type Status string

// The statuses. Pending and Compensating orders have an unfinished saga;
// Confirmed and Failed are final.
const (
	Pending      Status = "pending"
	Compensating Status = "compensating"
	Confirmed    Status = "confirmed"
	Failed       Status = "failed"
)

// Finished reports whether s is final.
func (s Status) Finished() bool { return s == Confirmed || s == Failed }

// Step is the forward step the saga runs next (or is running). A saga
// that resumes repeats it, which is safe because every remote call is
// idempotent by order id.
type Step string

// The forward steps, in order.
const (
	StepValidate Step = "validate" // user exists and is active; items priced
	StepReserve  Step = "reserve"  // inventory ReserveStock
	StepCharge   Step = "charge"   // payment Charge
	StepConfirm  Step = "confirm"  // inventory CommitReservation, then Confirmed
	StepDone     Step = "done"
)

// CurrencyUSD is the one currency inventory prices are in.
const CurrencyUSD = "USD"

// Item is a quantity of one product at the unit price inventory quoted.
type Item struct {
	ProductID      string `json:"product_id"`
	Quantity       int64  `json:"quantity"`
	UnitPriceCents int64  `json:"unit_price_cents"`
}

// Order is one purchase and the persisted state of its saga.
type Order struct {
	ID          string
	UserID      string
	Items       []Item
	AmountCents int64
	Currency    string
	// PaymentToken is kept so a resumed saga can repeat the charge with
	// the same request; it is the opaque token, never a card number, and
	// it is dropped as soon as no charge can follow (confirming, failing).
	PaymentToken string
	// IdempotencyKey is the client's key for retrying CreateOrder, "" if
	// it sent none; unique per user.
	IdempotencyKey string
	Status         Status
	Step           Step
	// OwesRelease and OwesRefund are the compensations owed: set before
	// the reserve and charge calls (which may land even if the answer is
	// lost) and cleared once the compensation is acknowledged.
	OwesRelease bool
	OwesRefund  bool
	Reason      string
	// Variant is the checkout-flow experiment variant, "" if none.
	Variant string
	// Version increments on every stored change; stores update by
	// compare-and-swap on it, so a cancel and a running saga cannot
	// overwrite each other.
	Version   int64
	CreatedAt time.Time
	UpdatedAt time.Time
	// ResumeAttempts counts the resumer's drives of this saga, which
	// space out exponentially; bookkeeping, not saga state.
	ResumeAttempts int
}

// ValidationError is bad input a caller can fix.
type ValidationError struct{ Field, Problem string }

func (e *ValidationError) Error() string { return e.Field + ": " + e.Problem }

// NotFoundError is an unknown order id, or no order for an idempotency key.
type NotFoundError struct {
	ID string
	// Key is set instead of ID when the order was looked up by its
	// idempotency key.
	Key string
}

func (e *NotFoundError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("no order with idempotency key %q", e.Key)
	}
	return fmt.Sprintf("order %q not found", e.ID)
}

// ConflictError says the order changed since it was read; the writer
// must read it again and decide anew.
type ConflictError struct{ ID string }

func (e *ConflictError) Error() string { return fmt.Sprintf("order %q changed concurrently", e.ID) }

// FinishedError refuses a change to a confirmed or failed order.
type FinishedError struct {
	ID     string
	Status Status
}

func (e *FinishedError) Error() string {
	return fmt.Sprintf("order %q is already %s", e.ID, e.Status)
}

// NewOrder checks a request and returns a pending order at its first
// step, with a time-ordered id that is also the idempotency key of its
// reservation and charge.
func NewOrder(userID string, items []Item, paymentToken, variant string, now time.Time) (Order, error) {
	if userID == "" {
		return Order{}, &ValidationError{"user_id", "is required"}
	}
	if paymentToken == "" {
		return Order{}, &ValidationError{"payment_method_token", "is required"}
	}
	if len(items) == 0 {
		return Order{}, &ValidationError{"items", "at least one item is required"}
	}
	seen := map[string]bool{}
	for i, it := range items {
		switch {
		case it.ProductID == "":
			return Order{}, &ValidationError{fmt.Sprintf("items[%d].product_id", i), "is required"}
		case seen[it.ProductID]:
			return Order{}, &ValidationError{fmt.Sprintf("items[%d].product_id", i), "is listed twice"}
		case it.Quantity <= 0:
			return Order{}, &ValidationError{fmt.Sprintf("items[%d].quantity", i), fmt.Sprintf("%d is not positive", it.Quantity)}
		}
		seen[it.ProductID] = true
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Order{}, fmt.Errorf("order id: %w", err)
	}
	now = now.UTC().Truncate(time.Microsecond)
	return Order{
		ID: id.String(), UserID: userID, Items: append([]Item(nil), items...), Currency: CurrencyUSD,
		PaymentToken: paymentToken, Status: Pending, Step: StepValidate, Variant: variant,
		Version: 1, CreatedAt: now, UpdatedAt: now,
	}, nil
}

// MaxAmountCents is the largest total an order may have: the payment
// service's largest charge.
const MaxAmountCents int64 = 10_000_000_000

// Price sets the items' unit prices (by product id) and the total. The
// prices come from another service, so a negative one, or a total beyond
// MaxAmountCents (checked without overflowing), is refused, leaving the
// order unchanged.
func (o *Order) Price(unit map[string]int64) error {
	var total int64
	prices := make([]int64, len(o.Items))
	for i, it := range o.Items {
		p, ok := unit[it.ProductID]
		switch {
		case !ok:
			return fmt.Errorf("no price for product %q", it.ProductID)
		case p < 0:
			return fmt.Errorf("product %q has a negative price (%d cents)", it.ProductID, p)
		case it.Quantity > 0 && p > (MaxAmountCents-total)/it.Quantity:
			return fmt.Errorf("the order's total exceeds the largest charge of %d cents", MaxAmountCents)
		}
		prices[i] = p
		total += p * it.Quantity
	}
	for i := range o.Items {
		o.Items[i].UnitPriceCents = prices[i]
	}
	o.AmountCents = total
	return nil
}

// Begin moves a pending order to step s, recording the compensation the
// step's call may create before the call is made.
func (o *Order) Begin(s Step) {
	o.Step = s
	switch s {
	case StepReserve:
		o.OwesRelease = true
	case StepCharge:
		o.OwesRefund = true
	case StepConfirm:
		o.PaymentToken = ""
	}
}

// Fail starts compensation with reason; the first reason wins.
func (o *Order) Fail(reason string) {
	if o.Status.Finished() {
		return
	}
	if o.Status != Compensating {
		o.Reason = reason
	}
	o.Status, o.PaymentToken = Compensating, ""
}

// Confirm ends the saga successfully: paid and stock committed, so
// nothing is owed any more.
func (o *Order) Confirm() {
	o.Status, o.Step, o.OwesRelease, o.OwesRefund, o.Reason, o.PaymentToken = Confirmed, StepDone, false, false, "", ""
}

// Compensated ends a compensating saga once nothing is owed.
func (o *Order) Compensated() error {
	if o.OwesRefund || o.OwesRelease {
		return fmt.Errorf("order %s still owes refund=%v release=%v", o.ID, o.OwesRefund, o.OwesRelease)
	}
	o.Status = Failed
	return nil
}

// ConfirmingError refuses to cancel an order whose payment is taken and
// whose reservation is being committed: a commit that lands could no
// longer be released, so the saga finishes it forward instead.
type ConfirmingError struct{ ID string }

func (e *ConfirmingError) Error() string {
	return fmt.Sprintf("order %q is paid and being confirmed; it can no longer be cancelled", e.ID)
}

// Cancel asks an unfinished saga to compensate.
func (o *Order) Cancel() error {
	if o.Status.Finished() {
		return &FinishedError{ID: o.ID, Status: o.Status}
	}
	if o.Status == Pending && o.Step == StepConfirm {
		return &ConfirmingError{ID: o.ID}
	}
	o.Fail("cancelled")
	return nil
}

// DuplicateKeyError is a CreateOrder whose idempotency key the user has
// already used.
type DuplicateKeyError struct{ UserID, Key string }

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("user %s already placed an order with idempotency key %q", e.UserID, e.Key)
}

// KeyReusedError is an idempotency key sent again with other items.
type KeyReusedError struct {
	Key   string
	Order Order
}

func (e *KeyReusedError) Error() string {
	return fmt.Sprintf("idempotency_key: %q was used for order %s with other items; use a new key for a new order", e.Key, e.Order.ID)
}

// SameItems reports whether o was placed for the same items as items (in
// any order): a retry must ask for what the first request asked for.
func (o Order) SameItems(items []Item) bool {
	if len(o.Items) != len(items) {
		return false
	}
	want := map[string]int64{}
	for _, it := range items {
		want[it.ProductID] = it.Quantity
	}
	for _, it := range o.Items {
		if q, ok := want[it.ProductID]; !ok || q != it.Quantity {
			return false
		}
	}
	return true
}
