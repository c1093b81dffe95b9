package app

import (
	"testing"

	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/host/hosttest"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/orderapi"
)

// TestChainedRunsTheChain: every RPC of the in-process gateway API goes
// through the gRPC server's chain (see hosttest.ChainRunsEveryRPC).
func TestChainedRunsTheChain(t *testing.T) {
	hosttest.ChainRunsEveryRPC(t, &orderv1.OrderService_ServiceDesc, orderapi.Policy, func(chain grpc.UnaryServerInterceptor) any {
		return &chained{api: &orderapi.Server{}, chain: chain}
	})
}
