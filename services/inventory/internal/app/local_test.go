package app

import (
	"testing"
	"time"

	"google.golang.org/grpc"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/inventory/internal/inventoryapi"
	"github.com/msctl/msctl/services/kit/host/hosttest"
	"github.com/msctl/msctl/services/kit/logging"
)

// TestChainedRunsTheChain: every RPC of the in-process gateway API goes
// through the gRPC server's chain (see hosttest.ChainRunsEveryRPC).
func TestChainedRunsTheChain(t *testing.T) {
	hosttest.ChainRunsEveryRPC(t, &inventoryv1.InventoryService_ServiceDesc, inventoryapi.Policy, func(chain grpc.UnaryServerInterceptor) any {
		return &chained{api: inventoryapi.New(nil, logging.Discard(), time.Minute), chain: chain}
	})
}
