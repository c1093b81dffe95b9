package app

import (
	"testing"

	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/host/hosttest"
	"github.com/msctl/msctl/services/kit/logging"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	"github.com/msctl/msctl/services/payment/internal/domain"
	"github.com/msctl/msctl/services/payment/internal/paymentapi"
)

// TestChainedRunsTheChain: every RPC of the in-process gateway API goes
// through the gRPC server's chain (see hosttest.ChainRunsEveryRPC).
func TestChainedRunsTheChain(t *testing.T) {
	hosttest.ChainRunsEveryRPC(t, &paymentv1.PaymentService_ServiceDesc, paymentapi.Policy, func(chain grpc.UnaryServerInterceptor) any {
		return &chained{api: paymentapi.New(nil, logging.Discard(), domain.Processor{}), chain: chain}
	})
}
