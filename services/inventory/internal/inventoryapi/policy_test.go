package inventoryapi

import (
	"testing"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/kit/auth"
)

// TestPolicyCoversEveryRPC stops a new RPC from shipping without a
// permission: the policy fails closed, so it would be unusable, not open.
func TestPolicyCoversEveryRPC(t *testing.T) {
	methods := auth.Methods(&inventoryv1.InventoryService_ServiceDesc)
	if len(methods) != 8 {
		t.Fatalf("found %d RPCs, want 8", len(methods))
	}
	if err := Policy.Covers(methods); err != nil {
		t.Fatal(err)
	}
}

// TestServiceRole pins what the order service may do.
func TestServiceRole(t *testing.T) {
	svc := auth.Principal{Roles: []string{"service"}}
	for method, want := range map[string]bool{
		inventoryv1.InventoryService_ReserveStock_FullMethodName:     true,
		inventoryv1.InventoryService_GetProduct_FullMethodName:       true,
		inventoryv1.InventoryService_BatchGetProducts_FullMethodName: true,
		inventoryv1.InventoryService_AdjustStock_FullMethodName:      false,
		inventoryv1.InventoryService_CreateProduct_FullMethodName:    false,
	} {
		if got := Policy.Allowed(svc, method); got != want {
			t.Errorf("service role on %s: allowed %v, want %v", method, got, want)
		}
	}
}
