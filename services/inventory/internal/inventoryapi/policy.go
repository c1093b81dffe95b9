package inventoryapi

import (
	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/kit/auth"
)

// Permissions of the inventory service.
const (
	PermRead    auth.Permission = "inventory.read"
	PermWrite   auth.Permission = "inventory.write"
	PermReserve auth.Permission = "inventory.reserve"
)

// Policy is the inventory service's whole RBAC table. The order service
// runs as "service": it reads products and reserves stock but cannot
// create products or change stock levels by hand. A test checks every RPC
// is listed.
var Policy = auth.Policy{
	Roles: map[string][]auth.Permission{
		"admin":   {PermRead, PermWrite, PermReserve},
		"service": {PermRead, PermReserve},
		"support": {PermRead, PermWrite},
		"reader":  {PermRead},
	},
	Methods: map[string]auth.Permission{
		inventoryv1.InventoryService_GetProduct_FullMethodName:        PermRead,
		inventoryv1.InventoryService_BatchGetProducts_FullMethodName:  PermRead,
		inventoryv1.InventoryService_ListProducts_FullMethodName:      PermRead,
		inventoryv1.InventoryService_CreateProduct_FullMethodName:     PermWrite,
		inventoryv1.InventoryService_AdjustStock_FullMethodName:       PermWrite,
		inventoryv1.InventoryService_ReserveStock_FullMethodName:      PermReserve,
		inventoryv1.InventoryService_ReleaseStock_FullMethodName:      PermReserve,
		inventoryv1.InventoryService_CommitReservation_FullMethodName: PermReserve,
	},
}
