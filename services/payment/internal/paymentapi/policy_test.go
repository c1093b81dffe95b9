package paymentapi

import (
	"testing"

	"github.com/msctl/msctl/services/kit/auth"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
)

// TestPolicyCoversEveryRPC stops a new RPC from shipping without a
// permission: the policy fails closed, so it would be unusable, not open.
func TestPolicyCoversEveryRPC(t *testing.T) {
	methods := auth.Methods(&paymentv1.PaymentService_ServiceDesc)
	if len(methods) != 4 {
		t.Fatalf("found %d RPCs, want 4", len(methods))
	}
	if err := Policy.Covers(methods); err != nil {
		t.Fatal(err)
	}
}

// TestRoles pins what the order service, support and admins may do.
func TestRoles(t *testing.T) {
	for _, c := range []struct {
		role   string
		method string
		want   bool
	}{
		{"service", paymentv1.PaymentService_Charge_FullMethodName, true},
		{"service", paymentv1.PaymentService_Refund_FullMethodName, true},
		{"service", paymentv1.PaymentService_GetPayment_FullMethodName, true},
		{"service", paymentv1.PaymentService_ListPayments_FullMethodName, false},
		{"support", paymentv1.PaymentService_Charge_FullMethodName, false},
		{"support", paymentv1.PaymentService_Refund_FullMethodName, false},
		{"reader", paymentv1.PaymentService_ListPayments_FullMethodName, true},
		{"admin", paymentv1.PaymentService_ListPayments_FullMethodName, true},
		{"admin", paymentv1.PaymentService_Refund_FullMethodName, true},
	} {
		if got := Policy.Allowed(auth.Principal{Roles: []string{c.role}}, c.method); got != c.want {
			t.Errorf("%s on %s: allowed %v, want %v", c.role, c.method, got, c.want)
		}
	}
}
