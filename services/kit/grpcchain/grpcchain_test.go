package grpcchain

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/logging"
)

func TestUnaryLevel(t *testing.T) {
	slow := 100 * time.Millisecond
	cases := []struct {
		code codes.Code
		d    time.Duration
		want slog.Level
	}{
		{codes.OK, time.Millisecond, slog.LevelDebug},
		{codes.OK, slow, slog.LevelInfo},
		{codes.NotFound, time.Millisecond, slog.LevelInfo},
		{codes.Unauthenticated, time.Millisecond, slog.LevelInfo},
		{codes.Internal, time.Millisecond, slog.LevelError},
		{codes.Unavailable, time.Millisecond, slog.LevelError},
	}
	for _, c := range cases {
		if got := unaryLevel(status.Error(c.code, "x"), c.d, slow); got != c.want {
			t.Errorf("unaryLevel(%v, %v) = %v, want %v", c.code, c.d, got, c.want)
		}
	}
}

// TestUnaryLogsFailuresAtInfo runs the in-process chain at info level: a
// quick success writes no line, an auth failure and a slow call do.
func TestUnaryLogsFailuresAtInfo(t *testing.T) {
	var buf bytes.Buffer
	log := logging.New(&buf, slog.LevelInfo, "test", "v")
	pol := auth.Policy{Roles: map[string][]auth.Permission{"r": {"read"}}, Methods: map[string]auth.Permission{"/s/M": "read"}}
	keys, err := auth.NewAPIKeys([]auth.APIKeyEntry{{Name: "k", SHA256: auth.HashAPIKey("key"), Roles: []string{"r"},
		Expires: time.Now().Add(time.Hour), RatePerSecond: 100, Burst: 100}}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	conn := NewInProcess(Options{Logger: log, Auth: auth.New(pol, nil, keys, log), SlowCall: 50 * time.Millisecond})
	var delay time.Duration
	conn.RegisterService(echoDesc, echo(func() { time.Sleep(delay) }))
	call := func(ctx context.Context, d time.Duration) error {
		delay = d
		return conn.Invoke(ctx, "/s/M", wrapperspb.String("req"), new(wrapperspb.StringValue))
	}
	withKey := metadata.NewOutgoingContext(context.Background(), metadata.Pairs(auth.APIKeyKey, "key", "x-request-id", "r-1"))
	if err := call(withKey, 0); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Fatalf("a quick success was logged at info: %s", buf.String())
	}
	if err := call(context.Background(), 0); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no credentials: %v", err)
	}
	// One line: auth's own, sampled; the call's line would repeat it.
	if !strings.Contains(buf.String(), `"auth rejected"`) || strings.Count(buf.String(), "\n") != 1 {
		t.Fatalf("the auth failure is not logged in one line: %s", buf.String())
	}
	buf.Reset()
	if err := call(withKey, 60*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, `"code":"OK"`) || !strings.Contains(out, `"subject":"apikey:k"`) ||
		!strings.Contains(out, `"request_id":"r-1"`) {
		t.Fatalf("the slow call is not logged with its caller and request id: %s", out)
	}
}

// TestChainOrder checks Unary runs interceptors outermost first, like
// grpc.ChainUnaryInterceptor.
func TestChainOrder(t *testing.T) {
	var order []string
	mk := func(name string) grpc.UnaryServerInterceptor {
		return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			order = append(order, name)
			return h(ctx, req)
		}
	}
	resp, err := chainUnary([]grpc.UnaryServerInterceptor{mk("a"), mk("b"), mk("c")})(context.Background(), 1,
		&grpc.UnaryServerInfo{}, func(_ context.Context, req any) (any, error) { order = append(order, "h"); return req, nil })
	if err != nil || resp != 1 || strings.Join(order, "") != "abch" {
		t.Fatalf("got %v %v, order %v", resp, err, order)
	}
}

// joinedProblems is a request whose validator joins two problems the way
// errors.Join does, with a newline.
type joinedProblems struct{}

func (joinedProblems) Validate() error {
	return errors.Join(errors.New("a: is required"), errors.New("b: is required"))
}

func TestValidationStatusIsOneLine(t *testing.T) {
	called := false
	_, err := validateUnary(context.Background(), joinedProblems{}, &grpc.UnaryServerInfo{FullMethod: "/x.Y/Z"},
		func(context.Context, any) (any, error) { called = true; return nil, nil })
	if called {
		t.Fatal("the handler ran for an invalid request")
	}
	st := status.Convert(err)
	if st.Code() != codes.InvalidArgument || st.Message() != "a: is required; b: is required" {
		t.Fatalf("status %v %q, want InvalidArgument with both problems on one line", st.Code(), st.Message())
	}
}
