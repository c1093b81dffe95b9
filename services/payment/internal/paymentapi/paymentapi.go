// Package paymentapi implements the PaymentService gRPC API over the
// store: it converts between protobuf and domain types, asks the
// simulated processor for a decision, and maps domain and store errors to
// gRPC codes. It never talks SQL and never decides idempotency itself.
package paymentapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/msctl/msctl/services/kit/paging"
	"github.com/msctl/msctl/services/kit/storage"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	"github.com/msctl/msctl/services/payment/internal/domain"
	"github.com/msctl/msctl/services/payment/internal/store"
)

// Server is the PaymentService implementation.
type Server struct {
	paymentv1.UnimplementedPaymentServiceServer
	// store is the open store; the kit's chain lets no call through
	// before the database is open.
	store     func() store.Store
	logger    *slog.Logger
	processor domain.Processor
	now       func() time.Time
}

// New returns a Server over s whose charges are decided by processor.
func New(s func() store.Store, logger *slog.Logger, processor domain.Processor) *Server {
	return &Server{store: s, logger: logger, processor: processor, now: time.Now}
}

// apiError maps domain and store errors to statuses with clear messages;
// anything unexpected is logged here and reported as UNAVAILABLE without
// internals, which tells the saga the outcome is unknown and a retry with
// the same idempotency key is safe.
func (s *Server) apiError(ctx context.Context, err error) error {
	var (
		ve *domain.ValidationError
		nf *domain.NotFoundError
		kr *domain.KeyReusedError
		ac *domain.AlreadyChargedError
		ce *domain.CancelledError
	)
	switch {
	case errors.As(err, &ve):
		return status.Error(codes.InvalidArgument, ve.Error())
	case errors.As(err, &nf):
		return status.Error(codes.NotFound, nf.Error())
	case errors.As(err, &kr):
		return status.Error(codes.AlreadyExists, kr.Error())
	case errors.As(err, &ac):
		return status.Error(codes.AlreadyExists, ac.Error())
	case errors.As(err, &ce):
		return status.Error(codes.FailedPrecondition, ce.Error())
	}
	return storage.APIError(ctx, s.logger, "storage error", err, "storage is unavailable, retry later with the same idempotency key")
}

// Charge implements PaymentService. A decline is returned as a normal
// answer, and logged, so it is visible without counting as an error.
func (s *Server) Charge(ctx context.Context, req *paymentv1.ChargeRequest) (*paymentv1.Payment, error) {
	r, err := domain.ChargeRequest{OrderID: req.GetOrderId(), IdempotencyKey: req.GetIdempotencyKey(),
		Currency: req.GetCurrency(), MethodToken: req.GetPaymentMethodToken(), Amount: req.GetAmount()}.Normalize()
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	p, err := domain.NewPayment(r, s.processor.Decide(r), s.now())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	got, err := s.store().Charge(ctx, p)
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	if got.Status == domain.Declined && got.ID == p.ID {
		s.logger.InfoContext(ctx, "charge declined", "order_id", got.OrderID, "reason", got.DeclineReason)
	}
	return PaymentToProto(got), nil
}

// Refund implements PaymentService.
func (s *Server) Refund(ctx context.Context, req *paymentv1.RefundRequest) (*paymentv1.Payment, error) {
	p, err := s.store().Refund(ctx, req.GetOrderId(), s.now())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return PaymentToProto(p), nil
}

// GetPayment implements PaymentService.
func (s *Server) GetPayment(ctx context.Context, req *paymentv1.GetPaymentRequest) (*paymentv1.Payment, error) {
	p, err := s.store().Payment(ctx, req.GetOrderId())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return PaymentToProto(p), nil
}

// paymentsCursor pages ListPayments.
var paymentsCursor = paging.Cursor{Prefix: "p1:", Method: "ListPayments"}

// ListPayments implements PaymentService.
func (s *Server) ListPayments(ctx context.Context, req *paymentv1.ListPaymentsRequest) (*paymentv1.ListPaymentsResponse, error) {
	after, err := paymentsCursor.After(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := paging.Size(req.GetPageSize())
	ps, err := s.store().ListPayments(ctx, after, size+1) // one extra says whether a next page exists
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	resp := &paymentv1.ListPaymentsResponse{}
	ps, resp.NextPageToken = paging.Page(paymentsCursor, ps, size, func(p domain.Payment) string { return p.ID })
	for _, p := range ps {
		resp.Payments = append(resp.Payments, PaymentToProto(p))
	}
	return resp, nil
}

var toStatus = map[domain.Status]paymentv1.PaymentStatus{
	domain.Captured: paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED,
	domain.Declined: paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED,
	domain.Refunded: paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED,
}

// PaymentToProto converts a domain payment.
func PaymentToProto(p domain.Payment) *paymentv1.Payment {
	return &paymentv1.Payment{
		Id: p.ID, OrderId: p.OrderID, IdempotencyKey: p.IdempotencyKey, Amount: p.Amount, Currency: p.Currency,
		Status: toStatus[p.Status], DeclineReason: p.DeclineReason, PaymentMethodLast4: p.MethodLast4,
		CreateTime: timestamppb.New(p.CreatedAt), UpdateTime: timestamppb.New(p.UpdatedAt),
	}
}
