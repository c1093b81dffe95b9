package app

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/grpcchain"
	"github.com/msctl/msctl/services/kit/logging"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/orderapi"
)

// TestChainedRunsTheChain calls every unary RPC of the in-process gateway
// API without credentials: each must reach the chain under its own method
// name and be refused by auth, never answered unimplemented or unchecked.
func TestChainedRunsTheChain(t *testing.T) {
	log := logging.Discard()
	real := grpcchain.Unary(grpcchain.Options{Logger: log, Auth: auth.New(orderapi.Policy, nil, nil, log)})
	var seen string
	c := &chained{api: &orderapi.Server{}, chain: func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		seen = info.FullMethod
		return real(ctx, req, info, h)
	}}
	desc := orderv1.OrderService_ServiceDesc
	if len(desc.Methods) == 0 {
		t.Fatal("no unary methods")
	}
	for _, m := range desc.Methods {
		seen = ""
		_, err := m.Handler(c, context.Background(), func(any) error { return nil }, nil)
		want := "/" + desc.ServiceName + "/" + m.MethodName
		if status.Code(err) != codes.Unauthenticated || seen != want {
			t.Errorf("%s: %v, chain saw %q", want, err, seen)
		}
	}
}
