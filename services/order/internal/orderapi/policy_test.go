package orderapi

import (
	"testing"

	"github.com/msctl/msctl/services/kit/auth"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
)

// TestPolicyCoversEveryRPC stops a new RPC from shipping without a
// permission: the policy fails closed, so it would be unusable, not open.
func TestPolicyCoversEveryRPC(t *testing.T) {
	methods := auth.Methods(&orderv1.OrderService_ServiceDesc)
	if len(methods) != 4 {
		t.Fatalf("found %d RPCs, want 4", len(methods))
	}
	if err := Policy.Covers(methods); err != nil {
		t.Fatal(err)
	}
}

// TestRoles pins what customers, support and other services may do.
func TestRoles(t *testing.T) {
	for _, c := range []struct {
		role, method string
		want         bool
	}{
		{"customer", orderv1.OrderService_CreateOrder_FullMethodName, true},
		{"customer", orderv1.OrderService_CancelOrder_FullMethodName, true},
		{"customer", orderv1.OrderService_ListOrders_FullMethodName, false},
		{"support", orderv1.OrderService_CreateOrder_FullMethodName, false},
		{"support", orderv1.OrderService_ListOrders_FullMethodName, true},
		{"service", orderv1.OrderService_GetOrder_FullMethodName, true},
		{"service", orderv1.OrderService_CreateOrder_FullMethodName, false},
		{"admin", orderv1.OrderService_ListOrders_FullMethodName, true},
	} {
		if got := Policy.Allowed(auth.Principal{Roles: []string{c.role}}, c.method); got != c.want {
			t.Errorf("%s on %s: allowed %v, want %v", c.role, c.method, got, c.want)
		}
	}
}
