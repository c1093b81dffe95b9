// Package inventoryapi implements the InventoryService gRPC API over the
// store: it converts between protobuf and domain types, stamps
// reservations with their expiry, and maps domain and store errors to
// gRPC codes. It never talks SQL and never decides a stock rule itself.
package inventoryapi

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/inventory/internal/domain"
	"github.com/msctl/msctl/services/inventory/internal/store"
	"github.com/msctl/msctl/services/kit/paging"
	"github.com/msctl/msctl/services/kit/storage"
)

// Server is the InventoryService implementation.
type Server struct {
	inventoryv1.UnimplementedInventoryServiceServer
	// store is the open store; the kit's chain lets no call through
	// before the database is open.
	store  func() store.Store
	logger *slog.Logger
	// ttl is how long a reservation holds stock unless committed.
	ttl time.Duration
	now func() time.Time
}

// New returns a Server over s whose reservations expire after ttl.
func New(s func() store.Store, logger *slog.Logger, ttl time.Duration) *Server {
	return &Server{store: s, logger: logger, ttl: ttl, now: time.Now}
}

// apiError maps domain and store errors to statuses with clear messages;
// anything unexpected is logged here and reported without internals.
func (s *Server) apiError(ctx context.Context, err error) error {
	var (
		ve *domain.ValidationError
		nf *domain.NotFoundError
		is *domain.InsufficientStockError
		se *domain.StateError
		mm *domain.ItemsMismatchError
		ce *domain.CancelledError
		tm *domain.TooMuchStockError
	)
	switch {
	case errors.As(err, &ve):
		return status.Error(codes.InvalidArgument, ve.Error())
	case errors.As(err, &tm):
		return status.Error(codes.InvalidArgument, tm.Error())
	case errors.As(err, &nf):
		return status.Error(codes.NotFound, nf.Error())
	case errors.As(err, &is):
		return status.Error(codes.FailedPrecondition, is.Error())
	case errors.As(err, &se):
		return status.Error(codes.FailedPrecondition, se.Error())
	case errors.As(err, &mm):
		return status.Error(codes.AlreadyExists, mm.Error())
	case errors.As(err, &ce):
		return status.Error(codes.FailedPrecondition, ce.Error())
	case errors.Is(err, domain.ErrSKUTaken):
		return status.Error(codes.AlreadyExists, err.Error())
	}
	return storage.APIError(ctx, s.logger, "storage error", err, "storage is unavailable, retry later")
}

// CreateProduct implements InventoryService.
func (s *Server) CreateProduct(ctx context.Context, req *inventoryv1.CreateProductRequest) (*inventoryv1.Product, error) {
	p, err := domain.NewProduct(req.GetSku(), req.GetName(), req.GetPriceCents(), req.GetInitialStock(), s.now())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	if err := s.store().CreateProduct(ctx, p); err != nil {
		return nil, s.apiError(ctx, err)
	}
	return ProductToProto(p), nil
}

// GetProduct implements InventoryService.
func (s *Server) GetProduct(ctx context.Context, req *inventoryv1.GetProductRequest) (*inventoryv1.Product, error) {
	p, err := s.store().GetProduct(ctx, req.GetId())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return ProductToProto(p), nil
}

// BatchGetProducts implements InventoryService.
func (s *Server) BatchGetProducts(ctx context.Context, req *inventoryv1.BatchGetProductsRequest) (*inventoryv1.BatchGetProductsResponse, error) {
	found, err := s.store().GetProducts(ctx, req.GetIds())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	byID := make(map[string]domain.Product, len(found))
	for _, p := range found {
		byID[p.ID] = p
	}
	resp := &inventoryv1.BatchGetProductsResponse{Products: make([]*inventoryv1.Product, 0, len(req.GetIds()))}
	for _, id := range req.GetIds() {
		p, ok := byID[id]
		if !ok {
			return nil, s.apiError(ctx, &domain.NotFoundError{Kind: "product", ID: id})
		}
		resp.Products = append(resp.Products, ProductToProto(p))
	}
	return resp, nil
}

// productsCursor pages ListProducts.
var productsCursor = paging.Cursor{Prefix: "p1:", Method: "ListProducts",
	Valid: func(id string) error { return inventoryv1.ValidID("page_token", id) }}

// ListProducts implements InventoryService.
func (s *Server) ListProducts(ctx context.Context, req *inventoryv1.ListProductsRequest) (*inventoryv1.ListProductsResponse, error) {
	after, err := productsCursor.After(req.GetPageToken())
	if err != nil {
		return nil, err
	}
	size := paging.Size(req.GetPageSize())
	ps, err := s.store().ListProducts(ctx, after, size+1) // one extra says whether a next page exists
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	resp := &inventoryv1.ListProductsResponse{}
	ps, resp.NextPageToken = paging.Page(productsCursor, ps, size, func(p domain.Product) string { return p.ID })
	for _, p := range ps {
		resp.Products = append(resp.Products, ProductToProto(p))
	}
	return resp, nil
}

// AdjustStock implements InventoryService.
func (s *Server) AdjustStock(ctx context.Context, req *inventoryv1.AdjustStockRequest) (*inventoryv1.Product, error) {
	p, err := s.store().AdjustStock(ctx, req.GetProductId(), req.GetDelta(), s.now())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return ProductToProto(p), nil
}

// ReserveStock implements InventoryService.
func (s *Server) ReserveStock(ctx context.Context, req *inventoryv1.ReserveStockRequest) (*inventoryv1.Reservation, error) {
	items := make([]domain.Item, 0, len(req.GetItems()))
	for _, it := range req.GetItems() {
		items = append(items, domain.Item{ProductID: it.GetProductId(), Quantity: it.GetQuantity()})
	}
	now := s.now()
	r, err := s.store().Reserve(ctx, req.GetOrderId(), items, now, now.Add(s.ttl))
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return ReservationToProto(r), nil
}

// ReleaseStock implements InventoryService.
func (s *Server) ReleaseStock(ctx context.Context, req *inventoryv1.ReleaseStockRequest) (*inventoryv1.Reservation, error) {
	r, err := s.store().Release(ctx, req.GetOrderId(), s.now())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return ReservationToProto(r), nil
}

// CommitReservation implements InventoryService.
func (s *Server) CommitReservation(ctx context.Context, req *inventoryv1.CommitReservationRequest) (*inventoryv1.Reservation, error) {
	r, err := s.store().Commit(ctx, req.GetOrderId(), s.now())
	if err != nil {
		return nil, s.apiError(ctx, err)
	}
	return ReservationToProto(r), nil
}

// ProductToProto converts a domain product.
func ProductToProto(p domain.Product) *inventoryv1.Product {
	return &inventoryv1.Product{
		Id: p.ID, Sku: p.SKU, Name: p.Name, PriceCents: p.PriceCents, Available: p.Available, Reserved: p.Reserved,
		Version: p.Version, CreateTime: timestamppb.New(p.CreatedAt), UpdateTime: timestamppb.New(p.UpdatedAt),
	}
}

var toState = map[domain.State]inventoryv1.ReservationState{
	domain.Pending:   inventoryv1.ReservationState_RESERVATION_STATE_PENDING,
	domain.Committed: inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED,
	domain.Released:  inventoryv1.ReservationState_RESERVATION_STATE_RELEASED,
	domain.Expired:   inventoryv1.ReservationState_RESERVATION_STATE_EXPIRED,
}

// ReservationToProto converts a domain reservation.
func ReservationToProto(r domain.Reservation) *inventoryv1.Reservation {
	out := &inventoryv1.Reservation{
		OrderId: r.OrderID, State: toState[r.State], ExpireTime: timestamppb.New(r.ExpiresAt),
		CreateTime: timestamppb.New(r.CreatedAt), UpdateTime: timestamppb.New(r.UpdatedAt),
	}
	for _, it := range r.Items {
		out.Items = append(out.Items, &inventoryv1.Item{ProductId: it.ProductID, Quantity: it.Quantity})
	}
	return out
}
