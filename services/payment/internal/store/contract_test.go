package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/services/kit/storage/storetest"
	"github.com/msctl/msctl/services/payment/internal/domain"
)

// backends opens the Store on a fresh SQLite file and a fresh PostgreSQL
// database; the latter fails (never skips) when the server is unreachable.
var backends = storetest.Backends(Open)

// TestContract runs every behaviour the service relies on against both
// stores.
func TestContract(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"charge, get, refund", testChargeRefund},
		{"a retried charge returns the original result", testChargeIdempotent},
		{"one successful charge per order", testOneSuccessPerOrder},
		{"declines are recorded and refund is a no-op", testDeclined},
		{"list pages in id order", testList},
		{"concurrent retries of one key charge once", testConcurrentSameKey},
		{"concurrent keys for one order charge once", testConcurrentSameOrder},
		{"a refund before any charge refuses later charges", testRefundBeforeCharge},
		{"a refund racing a charge never leaves money taken", testRefundRacesCharge},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
			}
		})
	}
}

var (
	ctx = context.Background()
	now = time.Date(2030, 1, 2, 3, 4, 5, 678901000, time.UTC)
)

// attempt builds a decided charge attempt; a non-empty reason declines.
func attempt(t *testing.T, order, key string, amount int64, reason string) domain.Payment {
	t.Helper()
	r := domain.ChargeRequest{OrderID: order, IdempotencyKey: key, Amount: amount, Currency: "USD", MethodToken: "4242424242424242"}
	p, err := domain.NewPayment(r, reason, now)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// otherCard is p paid with another payment method.
func otherCard(t *testing.T, p domain.Payment) domain.Payment {
	t.Helper()
	q, err := domain.NewPayment(domain.ChargeRequest{OrderID: p.OrderID, IdempotencyKey: p.IdempotencyKey,
		Amount: p.Amount, Currency: p.Currency, MethodToken: "5555555555554444"}, "", now)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// count is how many rows the order has, by status.
func count(t *testing.T, s Store, order string) map[domain.Status]int {
	t.Helper()
	ps, err := s.ListPayments(ctx, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	n := map[domain.Status]int{}
	for _, p := range ps {
		if p.OrderID == order {
			n[p.Status]++
		}
	}
	return n
}

func testChargeRefund(t *testing.T, s Store) {
	p := attempt(t, "order-1", "key-1", 1999, "")
	got, err := s.Charge(ctx, p)
	if err != nil || got != p {
		t.Fatalf("Charge = %+v, %v; want %+v", got, err, p)
	}
	if got, err := s.Payment(ctx, "order-1"); err != nil || got != p {
		t.Fatalf("Payment = %+v, %v; want %+v", got, err, p)
	}
	// Repeating the refund later changes nothing, not even updated_at.
	for i := range 2 {
		r, err := s.Refund(ctx, "order-1", now.Add(time.Duration(i+1)*time.Minute))
		if err != nil || r.Status != domain.Refunded || r.ID != p.ID || !r.UpdatedAt.Equal(now.Add(time.Minute)) {
			t.Fatalf("Refund #%d = %+v, %v", i+1, r, err)
		}
	}
	var nf *domain.NotFoundError
	if _, err := s.Refund(ctx, "no-such-order", now); !errors.As(err, &nf) {
		t.Fatalf("refund of an unknown order: %v", err)
	}
	if _, err := s.Payment(ctx, "no-such-order"); !errors.As(err, &nf) {
		t.Fatalf("payment of an unknown order: %v", err)
	}
	// A refunded order stays paid-for: it cannot be charged again.
	var ac *domain.AlreadyChargedError
	if _, err := s.Charge(ctx, attempt(t, "order-1", "key-2", 1999, "")); !errors.As(err, &ac) || ac.Existing.ID != p.ID {
		t.Fatalf("charge after refund: %v", err)
	}
}

func testChargeIdempotent(t *testing.T, s Store) {
	first, err := s.Charge(ctx, attempt(t, "order-1", "key-1", 500, ""))
	if err != nil {
		t.Fatal(err)
	}
	// A retry is a new attempt with a new id and time; the original wins.
	again, err := s.Charge(ctx, attempt(t, "order-1", "key-1", 500, ""))
	if err != nil || again != first {
		t.Fatalf("retry = %+v, %v; want %+v", again, err, first)
	}
	var kr *domain.KeyReusedError
	for name, p := range map[string]domain.Payment{
		"other amount": attempt(t, "order-1", "key-1", 501, ""),
		"other order":  attempt(t, "order-2", "key-1", 500, ""),
		"other card":   otherCard(t, attempt(t, "order-1", "key-1", 500, "")),
	} {
		if _, err := s.Charge(ctx, p); !errors.As(err, &kr) || kr.Existing.ID != first.ID {
			t.Errorf("%s with a used key: %v", name, err)
		}
	}
	other := attempt(t, "order-1", "key-1", 500, "")
	other.Currency = "EUR"
	if _, err := s.Charge(ctx, other); !errors.As(err, &kr) {
		t.Errorf("other currency with a used key: %v", err)
	}
	if n := count(t, s, "order-1"); n[domain.Captured] != 1 || len(n) != 1 {
		t.Fatalf("rows for order-1: %v", n)
	}
	if n := count(t, s, "order-2"); len(n) != 0 {
		t.Fatalf("rows for order-2: %v", n)
	}
}

func testOneSuccessPerOrder(t *testing.T, s Store) {
	first, err := s.Charge(ctx, attempt(t, "order-1", "key-1", 500, ""))
	if err != nil {
		t.Fatal(err)
	}
	var ac *domain.AlreadyChargedError
	for _, reason := range []string{"", "would decline"} {
		if _, err := s.Charge(ctx, attempt(t, "order-1", "key-2", 500, reason)); !errors.As(err, &ac) || ac.Existing.ID != first.ID {
			t.Fatalf("second charge (reason %q): %v", reason, err)
		}
	}
	if n := count(t, s, "order-1"); n[domain.Captured] != 1 || len(n) != 1 {
		t.Fatalf("rows for order-1: %v", n)
	}
}

func testDeclined(t *testing.T, s Store) {
	d := attempt(t, "order-1", "key-1", 500, "card_declined")
	got, err := s.Charge(ctx, d)
	if err != nil || got != d || got.Status != domain.Declined {
		t.Fatalf("declined Charge = %+v, %v", got, err)
	}
	// The retry returns the decline, even if the processor would now approve.
	if again, err := s.Charge(ctx, attempt(t, "order-1", "key-1", 500, "")); err != nil || again != d {
		t.Fatalf("retry of a decline = %+v, %v", again, err)
	}
	// Refund of a declined order: a no-op returning the decline.
	if r, err := s.Refund(ctx, "order-1", now.Add(time.Hour)); err != nil || r != d {
		t.Fatalf("refund of a decline = %+v, %v", r, err)
	}
	// A new key may try again; the success is then the order's payment.
	ok, err := s.Charge(ctx, attempt(t, "order-1", "key-2", 500, ""))
	if err != nil || ok.Status != domain.Captured {
		t.Fatalf("charge after a decline = %+v, %v", ok, err)
	}
	if p, err := s.Payment(ctx, "order-1"); err != nil || p != ok {
		t.Fatalf("Payment = %+v, %v; want the success", p, err)
	}
}

func testList(t *testing.T, s Store) {
	var want []string
	for i := range 5 {
		p, err := s.Charge(ctx, attempt(t, fmt.Sprint("order-", i), fmt.Sprint("key-", i), 100, ""))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, p.ID)
	}
	var ids []string
	after := ""
	for {
		page, err := s.ListPayments(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			ids = append(ids, p.ID)
		}
		after = page[len(page)-1].ID
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("pages listed %v, want %v", ids, want)
	}
}

func testConcurrentSameKey(t *testing.T, s Store) {
	const n = 16
	var wg sync.WaitGroup
	got := make([]domain.Payment, n)
	errs := make([]error, n)
	for i := range n {
		p := attempt(t, "order-1", "key-1", 700, "") // built here: t.Fatal must not run in a goroutine
		wg.Go(func() { got[i], errs[i] = s.Charge(ctx, p) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("attempt %d: %v", i, err)
		}
		if got[i] != got[0] {
			t.Fatalf("attempt %d got %+v, attempt 0 got %+v", i, got[i], got[0])
		}
	}
	if c := count(t, s, "order-1"); c[domain.Captured] != 1 || len(c) != 1 {
		t.Fatalf("rows for order-1: %v", c)
	}
}

func testConcurrentSameOrder(t *testing.T, s Store) {
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		p := attempt(t, "order-1", fmt.Sprint("key-", i), 700, "")
		wg.Go(func() { _, errs[i] = s.Charge(ctx, p) })
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		var ac *domain.AlreadyChargedError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ac):
		default:
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d charges succeeded, want 1", ok)
	}
	if c := count(t, s, "order-1"); c[domain.Captured] != 1 || len(c) != 1 {
		t.Fatalf("rows for order-1: %v", c)
	}
}

func testRefundBeforeCharge(t *testing.T, s Store) {
	// The saga compensates a charge whose outcome it did not know before
	// the charge landed: Refund still answers NotFound, every time...
	var nf *domain.NotFoundError
	for range 2 {
		if _, err := s.Refund(ctx, "order-1", now); !errors.As(err, &nf) {
			t.Fatalf("refund of an uncharged order: %v", err)
		}
	}
	// ...and the charge landing afterwards is refused, under any key,
	// approved or declined, and records nothing.
	var ce *domain.CancelledError
	for _, p := range []domain.Payment{attempt(t, "order-1", "order-1", 1999, ""), attempt(t, "order-1", "key-2", 1999, "declined")} {
		if got, err := s.Charge(ctx, p); !errors.As(err, &ce) || ce.OrderID != "order-1" || got != (domain.Payment{}) {
			t.Fatalf("charge after refund of an uncharged order = %+v, %v", got, err)
		}
	}
	if n := count(t, s, "order-1"); len(n) != 0 {
		t.Fatalf("payments of a voided order: %v", n)
	}
	if _, err := s.Payment(ctx, "order-1"); !errors.As(err, &nf) {
		t.Fatalf("payment of a voided order: %v", err)
	}

	// Other orders are unaffected.
	if _, err := s.Charge(ctx, attempt(t, "order-2", "key-3", 100, "")); err != nil {
		t.Fatal(err)
	}
}

func testRefundRacesCharge(t *testing.T, s Store) {
	for i := range 20 {
		order := fmt.Sprintf("order-%d", i)
		var wg sync.WaitGroup
		var chargeErr, refundErr error
		wg.Go(func() { _, chargeErr = s.Charge(ctx, attempt(t, order, order, 100, "")) })
		wg.Go(func() { _, refundErr = s.Refund(ctx, order, now) })
		wg.Wait()
		var ce *domain.CancelledError
		var nf *domain.NotFoundError
		switch {
		case chargeErr == nil && refundErr == nil: // charged, then refunded
		case errors.As(chargeErr, &ce) && errors.As(refundErr, &nf): // voided, then refused
		default:
			t.Fatalf("%s: charge %v, refund %v", order, chargeErr, refundErr)
		}
		// Whatever the order, the compensation wins: no money is held.
		if _, err := s.Refund(ctx, order, now); err != nil && !errors.As(err, &nf) {
			t.Fatal(err)
		}
		if n := count(t, s, order); n[domain.Captured] != 0 {
			t.Fatalf("%s: money held after refund: %v", order, n)
		}
	}
}
