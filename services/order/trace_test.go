package main

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/logging"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/app"
	"github.com/msctl/msctl/services/order/internal/servicetest"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// recordingUsers is a user service that remembers the trace context and
// credentials of the GetUser calls it receives, and knows no users.
type recordingUsers struct {
	userv1.UnimplementedUserServiceServer
	got chan metadata.MD
}

func (r *recordingUsers) GetUser(ctx context.Context, _ *userv1.GetUserRequest) (*userv1.User, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	r.got <- md
	return nil, status.Error(codes.NotFound, "no such user")
}

// TestTraceContextReachesDependencies sends CreateOrder with a W3C
// traceparent and checks the user service's call carries the same trace
// id (a child span) and the order service's API key: so one CreateOrder
// is one trace across the services it calls.
func TestTraceContextReachesDependencies(t *testing.T) {
	users := &recordingUsers{got: make(chan metadata.MD, 1)}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	userv1.RegisterUserServiceServer(srv, users)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)

	env := map[string]string{
		"GRPC_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
		"DATABASE_URL":       "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "order.db")),
		"AUTH_API_KEYS_FILE": servicetest.KeysFile(t), "DOWNSTREAM_API_KEY": servicetest.ServiceKey,
		"USER_ADDR": l.Addr().String(), "INVENTORY_ADDR": servicetest.FreeAddr(t), "PAYMENT_ADDR": servicetest.FreeAddr(t),
	}
	cfg, err := app.LoadConfig(config.FromMap(env))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(context.Background(), cfg, logging.Discard(), config.FromMap(env))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	conn, err := grpc.NewClient(a.Addrs().GRPC.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	call := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", servicetest.AdminKey,
		"traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	req := &orderv1.CreateOrderRequest{UserId: "u1", PaymentMethodToken: "tok", Items: []*orderv1.Item{{ProductId: "p1", Quantity: 1}}}
	client := orderv1.NewOrderServiceClient(conn)
	// The store opens in the background; until then CreateOrder is UNAVAILABLE.
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err = client.CreateOrder(call, req)
		if status.Code(err) != codes.Unavailable || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "user: no such user") {
		t.Fatalf("CreateOrder for an unknown user: %v", err)
	}
	md := <-users.got
	if tp := md.Get("traceparent"); len(tp) != 1 || !strings.HasPrefix(tp[0], "00-"+traceID+"-") {
		t.Fatalf("user service got traceparent %v, want trace %s", tp, traceID)
	}
	if k := md.Get("x-api-key"); len(k) != 1 || k[0] != servicetest.ServiceKey {
		t.Fatalf("user service got x-api-key %v, want the order service's key", k)
	}
}
