package orderapi

import (
	"github.com/msctl/msctl/services/kit/auth"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
)

// Permissions of the order service.
const (
	PermRead   auth.Permission = "order.read"
	PermList   auth.Permission = "order.list"
	PermCreate auth.Permission = "order.create"
	PermCancel auth.Permission = "order.cancel"
)

// Policy is the order service's whole RBAC table. Customers ("customer")
// place, read and cancel orders but cannot list everyone's; support reads,
// lists and cancels but does not buy; readers read and list; other
// services read single orders. A test checks every RPC is listed.
var Policy = auth.Policy{
	Roles: map[string][]auth.Permission{
		"admin":    {PermRead, PermList, PermCreate, PermCancel},
		"customer": {PermRead, PermCreate, PermCancel},
		"support":  {PermRead, PermList, PermCancel},
		"reader":   {PermRead, PermList},
		"service":  {PermRead},
	},
	Methods: map[string]auth.Permission{
		orderv1.OrderService_CreateOrder_FullMethodName: PermCreate,
		orderv1.OrderService_GetOrder_FullMethodName:    PermRead,
		orderv1.OrderService_ListOrders_FullMethodName:  PermList,
		orderv1.OrderService_CancelOrder_FullMethodName: PermCancel,
	},
}
