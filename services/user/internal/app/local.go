package app

import (
	"context"

	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/grpcchain"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
	"github.com/msctl/msctl/services/user/internal/userapi"
)

// chained is the UserService the HTTP gateway calls in process: every
// method runs the API behind the same unary chain the gRPC server uses
// (metrics, request id, logging, auth, validation, fault injection,
// recovery), so an HTTP request is checked exactly like a gRPC call
// without a second hop through HTTP/2 and protobuf on loopback. Streams
// are not served over HTTP, so StreamUserActivity stays unimplemented
// here; the test in local_test.go fails if a unary RPC is missing.
type chained struct {
	userv1.UnimplementedUserServiceServer
	api   *userapi.Server
	chain grpc.UnaryServerInterceptor
}

func (c *chained) GetUser(ctx context.Context, req *userv1.GetUserRequest) (*userv1.User, error) {
	return grpcchain.Call(ctx, c.chain, c.api, userv1.UserService_GetUser_FullMethodName, req, c.api.GetUser)
}

func (c *chained) CreateUser(ctx context.Context, req *userv1.CreateUserRequest) (*userv1.User, error) {
	return grpcchain.Call(ctx, c.chain, c.api, userv1.UserService_CreateUser_FullMethodName, req, c.api.CreateUser)
}

func (c *chained) UpdateUser(ctx context.Context, req *userv1.UpdateUserRequest) (*userv1.User, error) {
	return grpcchain.Call(ctx, c.chain, c.api, userv1.UserService_UpdateUser_FullMethodName, req, c.api.UpdateUser)
}

func (c *chained) DeleteUser(ctx context.Context, req *userv1.DeleteUserRequest) (*userv1.DeleteUserResponse, error) {
	return grpcchain.Call(ctx, c.chain, c.api, userv1.UserService_DeleteUser_FullMethodName, req, c.api.DeleteUser)
}

func (c *chained) ListUsers(ctx context.Context, req *userv1.ListUsersRequest) (*userv1.ListUsersResponse, error) {
	return grpcchain.Call(ctx, c.chain, c.api, userv1.UserService_ListUsers_FullMethodName, req, c.api.ListUsers)
}
