package orderv1

import (
	"strings"
	"testing"
)

const (
	user    = "0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d"
	product = "0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3e"
)

// TestValidateCreateOrder pins the bad inputs refused before any saga step.
func TestValidateCreateOrder(t *testing.T) {
	ok := func() *CreateOrderRequest {
		return &CreateOrderRequest{UserId: user, PaymentMethodToken: "tok", Items: []*Item{{ProductId: product, Quantity: 2}}}
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
		{"duplicate product", "listed twice", func(r *CreateOrderRequest) { r.Items = append(r.Items, &Item{ProductId: product, Quantity: 1}) }},
		{"user id not a UUID", "user_id", func(r *CreateOrderRequest) { r.UserId = " " + user }},
		{"product id not a UUID", "items[0].product_id", func(r *CreateOrderRequest) { r.Items[0].ProductId = "nope" }},
		{"upper-case UUID", "user_id", func(r *CreateOrderRequest) { r.UserId = strings.ToUpper(user) }},
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
