package inventoryapi

import (
	"testing"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/kit/auth"
)

// TestPolicyCoversEveryRPC stops a new RPC from shipping without a
// permission: the policy fails closed, so it would be unusable, not open.
func TestPolicyCoversEveryRPC(t *testing.T) {
	var methods []string
	sd := inventoryv1.InventoryService_ServiceDesc
	for _, m := range sd.Methods {
		methods = append(methods, "/"+sd.ServiceName+"/"+m.MethodName)
	}
	if len(methods) != 7 || len(sd.Streams) != 0 {
		t.Fatalf("found %d unary and %d streaming RPCs, want 7 and 0", len(methods), len(sd.Streams))
	}
	if err := Policy.Covers(methods); err != nil {
		t.Fatal(err)
	}
}

// TestServiceRole pins what the order service may do.
func TestServiceRole(t *testing.T) {
	svc := auth.Principal{Roles: []string{"service"}}
	for method, want := range map[string]bool{
		inventoryv1.InventoryService_ReserveStock_FullMethodName:  true,
		inventoryv1.InventoryService_GetProduct_FullMethodName:    true,
		inventoryv1.InventoryService_AdjustStock_FullMethodName:   false,
		inventoryv1.InventoryService_CreateProduct_FullMethodName: false,
	} {
		if got := Policy.Allowed(svc, method); got != want {
			t.Errorf("service role on %s: allowed %v, want %v", method, got, want)
		}
	}
}
