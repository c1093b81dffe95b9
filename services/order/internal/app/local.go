package app

import (
	"context"
	"net/http"

	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/grpcchain"
	"github.com/msctl/msctl/services/kit/idempotency"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/orderapi"
)

// chained is the OrderService the HTTP gateway calls in process: every
// method runs the API behind the same unary chain the gRPC server uses
// (metrics, request id, logging, auth, validation, fault injection,
// recovery), so an HTTP request is checked exactly like a gRPC call
// without a second hop on loopback. The test in local_test.go fails if an
// RPC is missing here.
type chained struct {
	orderv1.UnimplementedOrderServiceServer
	api   *orderapi.Server
	chain grpc.UnaryServerInterceptor
}

func (c *chained) CreateOrder(ctx context.Context, req *orderv1.CreateOrderRequest) (*orderv1.Order, error) {
	return grpcchain.Call(ctx, c.chain, c.api, orderv1.OrderService_CreateOrder_FullMethodName, req, c.api.CreateOrder)
}

func (c *chained) GetOrder(ctx context.Context, req *orderv1.GetOrderRequest) (*orderv1.Order, error) {
	return grpcchain.Call(ctx, c.chain, c.api, orderv1.OrderService_GetOrder_FullMethodName, req, c.api.GetOrder)
}

func (c *chained) ListOrders(ctx context.Context, req *orderv1.ListOrdersRequest) (*orderv1.ListOrdersResponse, error) {
	return grpcchain.Call(ctx, c.chain, c.api, orderv1.OrderService_ListOrders_FullMethodName, req, c.api.ListOrders)
}

func (c *chained) CancelOrder(ctx context.Context, req *orderv1.CancelOrderRequest) (*orderv1.Order, error) {
	return grpcchain.Call(ctx, c.chain, c.api, orderv1.OrderService_CancelOrder_FullMethodName, req, c.api.CancelOrder)
}

// responseHeaders gives HTTP clients the experiment variant and the
// idempotency key used under the names gRPC clients see (the latter as
// Idempotency-Key): the gateway forwards gRPC response headers as
// Grpc-Metadata-<name>, and the kit's mux is shared by every service.
func responseHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&renaming{ResponseWriter: w}, r)
	})
}

// renamed maps the gateway's name of a gRPC response header to the HTTP
// one.
var renamed = map[string]string{
	http.CanonicalHeaderKey("Grpc-Metadata-" + orderapi.ExperimentHeader): orderapi.ExperimentHeader,
	http.CanonicalHeaderKey("Grpc-Metadata-" + idempotency.MetadataKey):   idempotency.Header,
}

type renaming struct {
	http.ResponseWriter
	written bool
}

func (r *renaming) rename() {
	if r.written {
		return
	}
	r.written = true
	h := r.Header()
	for from, to := range renamed {
		if v := h.Get(from); v != "" {
			h.Del(from)
			h.Set(to, v)
		}
	}
}

func (r *renaming) WriteHeader(code int) { r.rename(); r.ResponseWriter.WriteHeader(code) }

func (r *renaming) Write(b []byte) (int, error) { r.rename(); return r.ResponseWriter.Write(b) }

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *renaming) Unwrap() http.ResponseWriter { return r.ResponseWriter }
