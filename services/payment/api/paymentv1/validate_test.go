package paymentv1

import (
	"strings"
	"testing"
)

func TestChargeRequestValidate(t *testing.T) {
	cases := []struct {
		name string
		req  *ChargeRequest
		want string // "" means valid
	}{
		{"valid", &ChargeRequest{OrderId: "o1", IdempotencyKey: "k1", PaymentMethodToken: "tok"}, ""},
		{"one problem", &ChargeRequest{OrderId: "o1", IdempotencyKey: "k1"}, "payment_method_token: is required"},
		{"every problem on one line", &ChargeRequest{IdempotencyKey: strings.Repeat("k", MaxKeyLen+1)},
			"order_id: is required; idempotency_key: must be valid UTF-8 of at most 128 bytes; payment_method_token: is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.req.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Validate() = %v, want %q", err, tc.want)
			}
		})
	}
}
