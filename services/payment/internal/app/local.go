package app

import (
	"context"

	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/grpcchain"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	"github.com/msctl/msctl/services/payment/internal/paymentapi"
)

// chained is the PaymentService the HTTP gateway calls in process: every
// method runs the API behind the same unary chain the gRPC server uses
// (metrics, request id, logging, auth, validation, fault injection,
// recovery), so an HTTP request is checked exactly like a gRPC call
// without a second hop on loopback. The test in local_test.go fails if an
// RPC is missing here.
type chained struct {
	paymentv1.UnimplementedPaymentServiceServer
	api   *paymentapi.Server
	chain grpc.UnaryServerInterceptor
}

func (c *chained) Charge(ctx context.Context, req *paymentv1.ChargeRequest) (*paymentv1.Payment, error) {
	return grpcchain.Call(ctx, c.chain, c.api, paymentv1.PaymentService_Charge_FullMethodName, req, c.api.Charge)
}

func (c *chained) Refund(ctx context.Context, req *paymentv1.RefundRequest) (*paymentv1.Payment, error) {
	return grpcchain.Call(ctx, c.chain, c.api, paymentv1.PaymentService_Refund_FullMethodName, req, c.api.Refund)
}

func (c *chained) GetPayment(ctx context.Context, req *paymentv1.GetPaymentRequest) (*paymentv1.Payment, error) {
	return grpcchain.Call(ctx, c.chain, c.api, paymentv1.PaymentService_GetPayment_FullMethodName, req, c.api.GetPayment)
}

func (c *chained) ListPayments(ctx context.Context, req *paymentv1.ListPaymentsRequest) (*paymentv1.ListPaymentsResponse, error) {
	return grpcchain.Call(ctx, c.chain, c.api, paymentv1.PaymentService_ListPayments_FullMethodName, req, c.api.ListPayments)
}
