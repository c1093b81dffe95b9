package domain

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	ok := ChargeRequest{OrderID: "o", IdempotencyKey: "k", MethodToken: "tok_4242", Currency: " usd ", Amount: 1}
	got, err := ok.Normalize()
	if err != nil || got.Currency != "USD" {
		t.Fatalf("Normalize = %+v, %v", got, err)
	}
	for _, c := range []struct {
		name  string
		edit  func(*ChargeRequest)
		field string
	}{
		{"zero amount", func(r *ChargeRequest) { r.Amount = 0 }, "amount"},
		{"negative amount", func(r *ChargeRequest) { r.Amount = -5 }, "amount"},
		{"huge amount", func(r *ChargeRequest) { r.Amount = MaxAmount + 1 }, "amount"},
		{"unknown currency", func(r *ChargeRequest) { r.Currency = "XXX" }, "currency"},
		{"no currency", func(r *ChargeRequest) { r.Currency = "" }, "currency"},
		{"no key", func(r *ChargeRequest) { r.IdempotencyKey = "" }, "idempotency_key"},
		{"no order", func(r *ChargeRequest) { r.OrderID = "" }, "order_id"},
		{"no token", func(r *ChargeRequest) { r.MethodToken = "" }, "payment_method_token"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := ok
			c.edit(&r)
			_, err := r.Normalize()
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != c.field {
				t.Fatalf("err = %v, want a ValidationError on %s", err, c.field)
			}
		})
	}
	if _, err := (ChargeRequest{OrderID: "o", IdempotencyKey: "k", MethodToken: "t", Currency: "EUR", Amount: MaxAmount}).Normalize(); err != nil {
		t.Fatalf("the maximum amount is allowed: %v", err)
	}
}

func TestProcessorDecide(t *testing.T) {
	req := func(order, card string) ChargeRequest { return ChargeRequest{OrderID: order, MethodToken: card} }
	if r := (Processor{}).Decide(req("o-1", "4000000000000002")); r != "" {
		t.Fatalf("the default processor declined: %q", r)
	}
	p := Processor{DeclineCards: []string{"4000000000000002"}}
	if r := p.Decide(req("o-1", "4000000000000002")); r == "" || !strings.Contains(r, "0002") {
		t.Fatalf("decline card approved or unnamed: %q", r)
	}
	if r := p.Decide(req("o-1", "4242424242424242")); r != "" {
		t.Fatalf("other card declined: %q", r)
	}
	// The rate is close to its share over many orders, and an order's
	// answer never changes.
	p = Processor{DeclineRate: 0.3}
	declined := 0
	const n = 20000
	for i := range n {
		order := fmt.Sprint("order-", i)
		r := p.Decide(req(order, "4242"))
		if r != "" {
			declined++
		}
		if again := p.Decide(req(order, "4242")); again != r {
			t.Fatalf("order %s: %q then %q", order, r, again)
		}
	}
	if share := float64(declined) / n; share < 0.28 || share > 0.32 {
		t.Fatalf("declined %.3f of orders at rate 0.3", share)
	}
	if r := (Processor{DeclineRate: 1}).Decide(req("any", "4242")); r == "" {
		t.Fatal("rate 1 approved")
	}
}

func TestNewPayment(t *testing.T) {
	now := time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.UTC)
	r := ChargeRequest{OrderID: "o", IdempotencyKey: "k", MethodToken: "4242424242424242", Currency: "USD", Amount: 100}
	p, err := NewPayment(r, "", now)
	if err != nil || p.Status != Captured || p.MethodLast4 != "4242" || len(p.ID) != 36 || !p.CreatedAt.Equal(now.Truncate(time.Microsecond)) {
		t.Fatalf("NewPayment = %+v, %v", p, err)
	}
	if p.MethodSHA256 == "" || strings.Contains(p.MethodSHA256, "4242") {
		t.Fatalf("method recorded as %q, want a hash of the token", p.MethodSHA256)
	}
	again, _ := NewPayment(r, "", now)
	if !p.SameCharge(again) {
		t.Fatal("a repeat of the same request differs")
	}
	for name, edit := range map[string]func(*ChargeRequest){
		"amount":   func(r *ChargeRequest) { r.Amount = 101 },
		"currency": func(r *ChargeRequest) { r.Currency = "EUR" },
		"order":    func(r *ChargeRequest) { r.OrderID = "o2" },
		"method":   func(r *ChargeRequest) { r.MethodToken = "5555555555554444" },
	} {
		other := r
		edit(&other)
		q, _ := NewPayment(other, "", now)
		if p.SameCharge(q) {
			t.Errorf("another %s counted as the same charge", name)
		}
	}
	d, _ := NewPayment(r, "no", now)
	if d.Status != Declined || d.DeclineReason != "no" {
		t.Fatalf("declined payment = %+v", d)
	}
}
