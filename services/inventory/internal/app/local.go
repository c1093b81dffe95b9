package app

import (
	"context"

	"google.golang.org/grpc"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/inventory/internal/inventoryapi"
	"github.com/msctl/msctl/services/kit/grpcchain"
)

// chained is the InventoryService the HTTP gateway calls in process: every
// method runs the API behind the same unary chain the gRPC server uses
// (metrics, request id, logging, auth, validation, fault injection,
// recovery), so an HTTP request is checked exactly like a gRPC call
// without a second hop on loopback. The test in local_test.go fails if an
// RPC is missing here.
type chained struct {
	inventoryv1.UnimplementedInventoryServiceServer
	api   *inventoryapi.Server
	chain grpc.UnaryServerInterceptor
}

func (c *chained) CreateProduct(ctx context.Context, req *inventoryv1.CreateProductRequest) (*inventoryv1.Product, error) {
	return grpcchain.Call(ctx, c.chain, c.api, inventoryv1.InventoryService_CreateProduct_FullMethodName, req, c.api.CreateProduct)
}

func (c *chained) GetProduct(ctx context.Context, req *inventoryv1.GetProductRequest) (*inventoryv1.Product, error) {
	return grpcchain.Call(ctx, c.chain, c.api, inventoryv1.InventoryService_GetProduct_FullMethodName, req, c.api.GetProduct)
}

func (c *chained) BatchGetProducts(ctx context.Context, req *inventoryv1.BatchGetProductsRequest) (*inventoryv1.BatchGetProductsResponse, error) {
	return grpcchain.Call(ctx, c.chain, c.api, inventoryv1.InventoryService_BatchGetProducts_FullMethodName, req, c.api.BatchGetProducts)
}

func (c *chained) ListProducts(ctx context.Context, req *inventoryv1.ListProductsRequest) (*inventoryv1.ListProductsResponse, error) {
	return grpcchain.Call(ctx, c.chain, c.api, inventoryv1.InventoryService_ListProducts_FullMethodName, req, c.api.ListProducts)
}

func (c *chained) AdjustStock(ctx context.Context, req *inventoryv1.AdjustStockRequest) (*inventoryv1.Product, error) {
	return grpcchain.Call(ctx, c.chain, c.api, inventoryv1.InventoryService_AdjustStock_FullMethodName, req, c.api.AdjustStock)
}

func (c *chained) ReserveStock(ctx context.Context, req *inventoryv1.ReserveStockRequest) (*inventoryv1.Reservation, error) {
	return grpcchain.Call(ctx, c.chain, c.api, inventoryv1.InventoryService_ReserveStock_FullMethodName, req, c.api.ReserveStock)
}

func (c *chained) ReleaseStock(ctx context.Context, req *inventoryv1.ReleaseStockRequest) (*inventoryv1.Reservation, error) {
	return grpcchain.Call(ctx, c.chain, c.api, inventoryv1.InventoryService_ReleaseStock_FullMethodName, req, c.api.ReleaseStock)
}

func (c *chained) CommitReservation(ctx context.Context, req *inventoryv1.CommitReservationRequest) (*inventoryv1.Reservation, error) {
	return grpcchain.Call(ctx, c.chain, c.api, inventoryv1.InventoryService_CommitReservation_FullMethodName, req, c.api.CommitReservation)
}
