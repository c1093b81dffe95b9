package app

import (
	"testing"

	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/host/hosttest"
	"github.com/msctl/msctl/services/kit/logging"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
	"github.com/msctl/msctl/services/user/internal/userapi"
)

// TestChainedRunsTheChain: every RPC of the in-process gateway API goes
// through the gRPC server's chain (see hosttest.ChainRunsEveryRPC).
func TestChainedRunsTheChain(t *testing.T) {
	hosttest.ChainRunsEveryRPC(t, &userv1.UserService_ServiceDesc, userapi.Policy, func(chain grpc.UnaryServerInterceptor) any {
		return &chained{api: userapi.New(nil, logging.Discard(), 0), chain: chain}
	})
}
