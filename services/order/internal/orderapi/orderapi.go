// Package orderapi implements the OrderService gRPC API: it converts
// between protobuf and domain types, assigns the checkout-flow experiment
// variant, hands new orders to the saga and maps outcomes to gRPC codes.
// It never talks SQL and never calls another service itself.
package orderapi

import (
	"cmp"
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/msctl/msctl/services/kit/experiments"
	"github.com/msctl/msctl/services/kit/idempotency"
	"github.com/msctl/msctl/services/kit/paging"
	"github.com/msctl/msctl/services/kit/storage"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/domain"
	"github.com/msctl/msctl/services/order/internal/saga"
	"github.com/msctl/msctl/services/order/internal/store"
)

// ExperimentHeader carries the caller's checkout-flow variant in the
// response (gRPC header; the HTTP server copies it to the same name).
const ExperimentHeader = "x-experiment-checkout-flow"

// Server is the OrderService implementation.
type Server struct {
	orderv1.UnimplementedOrderServiceServer
	// store is the open store; the kit's chain lets no call through
	// before the database is open.
	store      func() store.Store
	saga       *saga.Saga
	logger     *slog.Logger
	experiment experiments.Experiment
	exposures  *experiments.Exposures
	// sagaTimeout bounds the part of a saga CreateOrder waits for; what is
	// left is the resumer's.
	sagaTimeout time.Duration
	now         func() time.Time
}

// New returns a Server. exp is the checkout-flow experiment; exposures
// counts the variants served.
func New(s func() store.Store, sg *saga.Saga, logger *slog.Logger, exp experiments.Experiment, exposures *experiments.Exposures, sagaTimeout time.Duration) *Server {
	return &Server{store: s, saga: sg, logger: logger, experiment: exp, exposures: exposures, sagaTimeout: sagaTimeout, now: time.Now}
}

// apiError maps domain, saga and store errors to statuses with clear
// messages; anything unexpected is logged and reported without internals.
func (s *Server) apiError(ctx context.Context, err error) error {
	var (
		ve *domain.ValidationError
		nf *domain.NotFoundError
		fe *domain.FinishedError
		ce *domain.ConfirmingError
		cf *domain.ConflictError
		sf *saga.FailedError
		ss *saga.StalledError
		kr *domain.KeyReusedError
	)
	switch {
	case errors.As(err, &ve):
		return status.Error(codes.InvalidArgument, ve.Error())
	case errors.As(err, &kr):
		return status.Error(codes.AlreadyExists, kr.Error())
	case errors.As(err, &nf):
		return status.Error(codes.NotFound, nf.Error())
	case errors.As(err, &fe), errors.As(err, &ce):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.As(err, &cf):
		return status.Error(codes.Aborted, cf.Error()+"; retry")
	case errors.As(err, &sf):
		if sf.Unavailable {
			return status.Error(codes.Unavailable, sf.Error()+" (compensated; nothing is charged or held)")
		}
		return status.Error(codes.FailedPrecondition, sf.Error()+" (compensated; nothing is charged or held)")
	case errors.As(err, &ss):
		// The cause may be a storage error: logged, never sent. The order
		// exists, so a retried CreateOrder would place a second one.
		s.logger.WarnContext(ctx, "order stalled", "order", ss.Order.ID, "error", ss.Cause)
		return status.Errorf(codes.Unavailable, "order %s is %s at step %s and will be finished in the background; "+
			"follow it with GetOrder instead of placing it again", ss.Order.ID, strings.ToLower(string(ss.Order.Status)), ss.Order.Step)
	}
	return storage.APIError(ctx, s.logger, "order error", err, "storage is unavailable, retry later")
}

// variant assigns the user to the checkout-flow experiment, records the
// exposure and sends the variant as a response header; "" when the user
// is not in the experiment.
func (s *Server) variant(ctx context.Context, userID string) string {
	v, ok := s.experiment.Assign(experiments.User{ID: userID}, s.now())
	if !ok {
		return ""
	}
	s.exposures.Record(s.experiment.ID, v)
	if err := grpc.SetHeader(ctx, metadata.Pairs(ExperimentHeader, v)); err != nil {
		s.logger.DebugContext(ctx, "experiment header not sent", "error", err)
	}
	return v
}

// CreateOrder implements OrderService. The saga runs detached from the
// caller's cancellation: a client hanging up must not stop it between a
// call and the write of its outcome (the resumer would fix that, but
// later); the wait is bounded by sagaTimeout.
func (s *Server) CreateOrder(ctx context.Context, req *orderv1.CreateOrderRequest) (*orderv1.Order, error) {
	if user, only := ownerOnly(ctx); only && req.GetUserId() != user {
		return nil, status.Errorf(codes.PermissionDenied, "%s may place orders only for user %s, not %s", user, user, req.GetUserId())
	}
	items := make([]domain.Item, 0, len(req.GetItems()))
	for _, it := range req.GetItems() {
		items = append(items, domain.Item{ProductID: it.GetProductId(), Quantity: it.GetQuantity()})
	}
	key, err := idempotencyKey(ctx, req)
	if err != nil {
		return nil, err
	}
	if key != "" {
		prev, err := s.store().ByIdempotencyKey(ctx, req.GetUserId(), key)
		if err == nil {
			return s.repeated(ctx, prev, key, items)
		}
		if !errors.As(err, new(*domain.NotFoundError)) {
			return nil, s.apiError(ctx, err)
		}
	}
	o, err := domain.NewOrder(req.GetUserId(), items, req.GetPaymentMethodToken(), s.variant(ctx, req.GetUserId()), s.now())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	o.IdempotencyKey = key
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.sagaTimeout)
	defer cancel()
	got, err := s.saga.Create(sctx, o)
	if errors.As(err, new(*domain.DuplicateKeyError)) {
		// A request with the same key stored its order first.
		prev, gerr := s.store().ByIdempotencyKey(ctx, req.GetUserId(), key)
		if gerr != nil {
			return nil, s.apiError(ctx, gerr)
		}
		return s.repeated(ctx, prev, key, items)
	}
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return OrderToProto(got), nil
}

// idempotencyKey is the request's idempotency_key, else the
// Idempotency-Key the caller sent as a header (HTTP) or metadata (gRPC),
// else the one the gateway made up; a body and a header that disagree are
// a mistake the caller must see. The key used is sent back as the
// idempotency-key response header, so a caller can retry with it.
func idempotencyKey(ctx context.Context, req *orderv1.CreateOrderRequest) (string, error) {
	body := req.GetIdempotencyKey()
	header, generated := idempotency.FromIncoming(ctx)
	if body != "" && header != "" && body != header {
		return "", status.Errorf(codes.InvalidArgument, "idempotency_key %q disagrees with the %s header %q; send one, or the same in both",
			body, idempotency.Header, header)
	}
	key := cmp.Or(body, header, generated)
	if key != body {
		if err := orderv1.ValidKey(idempotency.Header, key); err != nil {
			return "", status.Error(codes.InvalidArgument, err.Error())
		}
	}
	if key != "" {
		_ = grpc.SetHeader(ctx, metadata.Pairs(idempotency.MetadataKey, key))
	}
	return key, nil
}

// repeated answers a CreateOrder whose idempotency key placed prev: with
// prev as it stands now, as the first request was answered, unless the
// items differ.
func (s *Server) repeated(ctx context.Context, prev domain.Order, key string, items []domain.Item) (*orderv1.Order, error) {
	if !prev.SameItems(items) {
		return nil, s.apiError(ctx, &domain.KeyReusedError{Key: key, Order: prev})
	}
	switch prev.Status {
	case domain.Confirmed:
		return OrderToProto(prev), nil
	case domain.Failed:
		return nil, s.apiError(ctx, &saga.FailedError{Order: prev})
	default:
		return nil, s.apiError(ctx, &saga.StalledError{Order: prev, Cause: errors.New("placed by an earlier request")})
	}
}

// GetOrder implements OrderService.
func (s *Server) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.Order, error) {
	o, err := s.owned(ctx, req.GetId())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return OrderToProto(o), nil
}

// owned reads an order the caller may see: another user's order is, to a
// customer, not found, so ids cannot be probed.
func (s *Server) owned(ctx context.Context, id string) (domain.Order, error) {
	o, err := s.store().Get(ctx, id)
	if err != nil {
		return domain.Order{}, err
	}
	if user, only := ownerOnly(ctx); only && o.UserID != user {
		return domain.Order{}, &domain.NotFoundError{ID: id}
	}
	return o, nil
}

// CancelOrder implements OrderService: it stores the cancel and then
// drives the compensation itself; a saga running elsewhere loses its
// compare-and-swap and follows the stored state. An order that cannot be
// compensated right now is returned COMPENSATING: the cancel stands.
func (s *Server) CancelOrder(ctx context.Context, req *orderv1.CancelOrderRequest) (*orderv1.Order, error) {
	o, err := s.owned(ctx, req.GetId())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	if err := o.Cancel(); err != nil {
		return nil, s.apiError(ctx, err)
	}
	if _, err := s.store().Update(ctx, o, s.now()); err != nil {
		return nil, s.apiError(ctx, err)
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.sagaTimeout)
	defer cancel()
	got, err := s.saga.Run(sctx, o.ID)
	var (
		fe *saga.FailedError
		se *saga.StalledError
	)
	switch {
	case errors.As(err, &fe):
		return OrderToProto(fe.Order), nil // cancelled and compensated
	case errors.As(err, &se):
		// The cancel is stored; the saga already running here, or the
		// resumer, finishes the compensation. COMPENSATING says so.
		return OrderToProto(se.Order), nil
	case err != nil:
		return nil, s.apiError(ctx, err)
	}
	return OrderToProto(got), nil
}

// ordersCursor pages ListOrders.
var ordersCursor = paging.Cursor{Prefix: "o1:", Method: "ListOrders"}

// ListOrders implements OrderService.
func (s *Server) ListOrders(ctx context.Context, req *orderv1.ListOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	after, err := ordersCursor.After(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := paging.Size(req.GetPageSize())
	orders, err := s.store().List(ctx, after, size+1) // one extra says whether a next page exists
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	resp := &orderv1.ListOrdersResponse{}
	orders, resp.NextPageToken = paging.Page(ordersCursor, orders, size, func(o domain.Order) string { return o.ID })
	for _, o := range orders {
		resp.Orders = append(resp.Orders, OrderToProto(o))
	}
	return resp, nil
}

var toStatus = map[domain.Status]orderv1.OrderStatus{
	domain.Pending:      orderv1.OrderStatus_ORDER_STATUS_PENDING,
	domain.Compensating: orderv1.OrderStatus_ORDER_STATUS_COMPENSATING,
	domain.Confirmed:    orderv1.OrderStatus_ORDER_STATUS_CONFIRMED,
	domain.Failed:       orderv1.OrderStatus_ORDER_STATUS_FAILED,
}

// OrderToProto converts a domain order; the payment token never leaves
// the service.
func OrderToProto(o domain.Order) *orderv1.Order {
	out := &orderv1.Order{
		Id: o.ID, UserId: o.UserID, AmountCents: o.AmountCents, Currency: o.Currency, Status: toStatus[o.Status],
		FailureReason: o.Reason, SagaStep: string(o.Step), ExperimentVariant: o.Variant,
		CreateTime: timestamppb.New(o.CreatedAt), UpdateTime: timestamppb.New(o.UpdatedAt),
	}
	for _, it := range o.Items {
		out.Items = append(out.Items, &orderv1.Item{ProductId: it.ProductID, Quantity: it.Quantity, UnitPriceCents: it.UnitPriceCents})
	}
	return out
}
