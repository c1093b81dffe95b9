// Package orderclient is the Go client of the order service. Its one rule:
// every CreateOrder carries an idempotency key, made up here when the
// caller has none, so a retry of the call (by the kit's downstream client,
// or by the caller with the same request) finds the first order instead of
// placing and charging a second one.
//
// Connection management (one connection per dependency, breakers, retries)
// is the caller's, through services/kit/downstream; this package takes any
// grpc.ClientConnInterface.
package orderclient

import (
	"context"

	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/idempotency"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
)

// Idempotent lists the methods a retrying client may repeat safely:
// CreateOrder too, because Create always sends a key. CancelOrder is not:
// a repeat of one that landed is refused once the order has failed.
var Idempotent = map[string]bool{
	orderv1.OrderService_CreateOrder_FullMethodName: true,
	orderv1.OrderService_GetOrder_FullMethodName:    true,
	orderv1.OrderService_ListOrders_FullMethodName:  true,
}

// Client calls the order service.
type Client struct {
	api orderv1.OrderServiceClient
}

// New returns a Client over conn.
func New(conn grpc.ClientConnInterface) *Client {
	return &Client{api: orderv1.NewOrderServiceClient(conn)}
}

// API is the generated client, for calls this package does not wrap.
func (c *Client) API() orderv1.OrderServiceClient { return c.api }

// Create places an order. A req without an idempotency key gets a new
// one, written into req, so that sending the same req again is a retry,
// never a second order.
func (c *Client) Create(ctx context.Context, req *orderv1.CreateOrderRequest, opts ...grpc.CallOption) (*orderv1.Order, error) {
	if req.GetIdempotencyKey() == "" {
		req.IdempotencyKey = idempotency.New()
	}
	return c.api.CreateOrder(ctx, req, opts...)
}

// Get returns one order.
func (c *Client) Get(ctx context.Context, id string) (*orderv1.Order, error) {
	return c.api.GetOrder(ctx, &orderv1.GetOrderRequest{Id: id})
}
