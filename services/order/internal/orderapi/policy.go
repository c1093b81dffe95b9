package orderapi

import (
	"context"
	"slices"

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
// place, read and cancel their own orders (their user is the JWT subject;
// an API key names no user, so a customer key reaches no order) but cannot
// list everyone's; support reads,
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

// everyUser are the roles that reach every user's orders. A caller with
// none of them, a customer, acts only for the user its credentials name:
// it places orders for that user alone and sees other users' orders as
// not found.
var everyUser = []string{"admin", "support", "reader", "service"}

// ownerOnly returns the user the caller is limited to, and whether it is
// limited. The auth interceptor puts a principal on every call it lets
// through; a handler called without one (a unit test) is not limited.
func ownerOnly(ctx context.Context) (string, bool) {
	p, ok := auth.PrincipalFrom(ctx)
	if !ok || slices.ContainsFunc(p.Roles, func(r string) bool { return slices.Contains(everyUser, r) }) {
		return "", false
	}
	return p.Subject, true
}
