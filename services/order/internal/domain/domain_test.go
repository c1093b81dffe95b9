package domain

import (
	"errors"
	"strings"
	"testing"
	"time"
)

var now = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func TestNewOrderRefusesBadInput(t *testing.T) {
	good := []Item{{ProductID: "p1", Quantity: 1}}
	for name, c := range map[string]struct {
		user, token string
		items       []Item
	}{
		"no user":           {"", "tok", good},
		"no token":          {"u", "", good},
		"no items":          {"u", "tok", nil},
		"zero quantity":     {"u", "tok", []Item{{ProductID: "p1"}}},
		"duplicate product": {"u", "tok", []Item{{ProductID: "p1", Quantity: 1}, {ProductID: "p1", Quantity: 2}}},
	} {
		var ve *ValidationError
		if _, err := NewOrder(c.user, c.items, c.token, "", now); !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a ValidationError", name, err)
		}
	}
}

// TestLifecycle walks the transitions the saga makes: compensations are
// owed from the moment a call may land, a failure keeps its first reason,
// and a finished order cannot be cancelled.
func TestLifecycle(t *testing.T) {
	o, err := NewOrder("u", []Item{{ProductID: "a", Quantity: 2}, {ProductID: "b", Quantity: 1}}, "tok", "control", now)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != Pending || o.Step != StepValidate || o.Version != 1 {
		t.Fatalf("new order: %+v", o)
	}
	if err := o.Price(map[string]int64{"a": 150, "b": 1000}); err != nil || o.AmountCents != 1300 {
		t.Fatalf("Price: %v, amount %d", err, o.AmountCents)
	}
	o.Begin(StepReserve)
	o.Begin(StepCharge)
	if !o.OwesRelease || !o.OwesRefund || o.PaymentToken != "tok" {
		t.Fatalf("owed after charge began: %+v", o)
	}
	o.Fail("payment declined")
	if o.PaymentToken != "" {
		t.Fatal("a failing order kept its payment token")
	}
	o.Fail("later reason")
	if o.Status != Compensating || o.Reason != "payment declined" {
		t.Fatalf("Fail: %s %q", o.Status, o.Reason)
	}
	if err := o.Compensated(); err == nil {
		t.Fatal("Compensated with compensations owed")
	}
	o.OwesRefund, o.OwesRelease = false, false
	if err := o.Compensated(); err != nil || o.Status != Failed {
		t.Fatalf("Compensated: %v %s", err, o.Status)
	}
	var fe *FinishedError
	if err := o.Cancel(); !errors.As(err, &fe) {
		t.Fatalf("cancel of a failed order: %v", err)
	}
	c, _ := NewOrder("u", []Item{{ProductID: "a", Quantity: 1}}, "tok", "", now)
	c.Begin(StepReserve)
	c.Begin(StepCharge)
	c.Begin(StepConfirm)
	if c.PaymentToken != "" {
		t.Fatal("a confirming order kept its payment token")
	}
	var ce *ConfirmingError
	if err := c.Cancel(); !errors.As(err, &ce) {
		t.Fatalf("cancel while confirming: %v", err)
	}
	c.Confirm()
	if c.Status != Confirmed || c.OwesRefund || c.OwesRelease {
		t.Fatalf("Confirm: %+v", c)
	}
	if err := c.Cancel(); !errors.As(err, &fe) {
		t.Fatalf("cancel of a confirmed order: %v", err)
	}
	if err := o.Price(map[string]int64{}); err == nil {
		t.Fatal("Price with no prices succeeded")
	}
}

// TestPriceRefusesTotalsNoChargeCanTake: prices come from the inventory
// service, so a total that would wrap around an int64 (and charge a few
// cents) or exceed the largest charge is refused and leaves the order as
// it was.
func TestPriceRefusesTotalsNoChargeCanTake(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prices map[string]int64
		want   string
	}{
		{"wraps around int64", map[string]int64{"a": 4611686018427387905, "b": 1}, "exceeds the largest charge"},
		{"max int64 price", map[string]int64{"a": 1<<63 - 1, "b": 1}, "exceeds the largest charge"},
		{"just over the largest charge", map[string]int64{"a": MaxAmountCents / 4, "b": 1}, "exceeds the largest charge"},
		{"negative price", map[string]int64{"a": 1, "b": -5}, "negative price"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o, err := NewOrder("u", []Item{{ProductID: "a", Quantity: 4}, {ProductID: "b", Quantity: 1}}, "tok", "", now)
			if err != nil {
				t.Fatal(err)
			}
			if err := o.Price(tc.prices); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Price = %v, want %q", err, tc.want)
			}
			if o.AmountCents != 0 || o.Items[0].UnitPriceCents != 0 {
				t.Fatalf("a refused price changed the order: %+v", o)
			}
		})
	}
	o, _ := NewOrder("u", []Item{{ProductID: "a", Quantity: 4}, {ProductID: "b", Quantity: 1}}, "tok", "", now)
	if err := o.Price(map[string]int64{"a": MaxAmountCents/4 - 1, "b": 4}); err != nil || o.AmountCents != MaxAmountCents {
		t.Fatalf("a total of exactly the largest charge: %v, %d", err, o.AmountCents)
	}
}
