package orderv1

import (
	"strings"
	"testing"
)

// TestValidateCreateOrder pins the bad inputs refused before any saga step.
func TestValidateCreateOrder(t *testing.T) {
	ok := func() *CreateOrderRequest {
		return &CreateOrderRequest{UserId: "u1", PaymentMethodToken: "tok", Items: []*Item{{ProductId: "p1", Quantity: 2}}}
	}
	if err := ok().Validate(); err != nil {
		t.Fatalf("valid request refused: %v", err)
	}
	for _, c := range []struct {
		name, want string
		edit       func(r *CreateOrderRequest)
	}{
		{"no user", "user_id", func(r *CreateOrderRequest) { r.UserId = "" }},
		{"no token", "payment_method_token", func(r *CreateOrderRequest) { r.PaymentMethodToken = "" }},
		{"no items", "items", func(r *CreateOrderRequest) { r.Items = nil }},
		{"zero quantity", "items[0].quantity", func(r *CreateOrderRequest) { r.Items[0].Quantity = 0 }},
		{"negative quantity", "items[0].quantity", func(r *CreateOrderRequest) { r.Items[0].Quantity = -1 }},
		{"duplicate product", "listed twice", func(r *CreateOrderRequest) { r.Items = append(r.Items, &Item{ProductId: "p1", Quantity: 1}) }},
	} {
		r := ok()
		c.edit(r)
		if err := r.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error naming %q", c.name, err, c.want)
		}
	}
	if err := (&ListOrdersRequest{PageSize: MaxPageSize + 1}).Validate(); err == nil {
		t.Error("page_size above the limit accepted")
	}
}
