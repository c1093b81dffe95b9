package paymentapi

import (
	"github.com/msctl/msctl/services/kit/auth"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
)

// Permissions of the payment service.
const (
	PermRead   auth.Permission = "payment.read"
	PermList   auth.Permission = "payment.list"
	PermCharge auth.Permission = "payment.charge"
)

// Policy is the payment service's whole RBAC table. The order service
// runs as "service": it charges and refunds, and reads an order's payment
// to learn the outcome of a call that timed out, but cannot list every
// payment. Admins do everything; support and readers read and list. A test
// checks every RPC is listed.
var Policy = auth.Policy{
	Roles: map[string][]auth.Permission{
		"admin":   {PermRead, PermList, PermCharge},
		"service": {PermRead, PermCharge},
		"support": {PermRead, PermList},
		"reader":  {PermRead, PermList},
	},
	Methods: map[string]auth.Permission{
		paymentv1.PaymentService_Charge_FullMethodName:       PermCharge,
		paymentv1.PaymentService_Refund_FullMethodName:       PermCharge,
		paymentv1.PaymentService_GetPayment_FullMethodName:   PermRead,
		paymentv1.PaymentService_ListPayments_FullMethodName: PermList,
	},
}
