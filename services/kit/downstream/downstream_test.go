package downstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// flaky is a health server failing with a chosen code, counting calls.
type flaky struct {
	healthpb.UnimplementedHealthServer
	calls atomic.Int32
	code  atomic.Int32
	// stall, when set, holds each answer until the caller gives up: the
	// call has landed, but its answer is lost.
	stall atomic.Bool
}

func (f *flaky) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	f.calls.Add(1)
	if f.stall.Load() {
		<-ctx.Done()
		return nil, status.FromContextError(ctx.Err()).Err()
	}
	if c := codes.Code(f.code.Load()); c != codes.OK {
		return nil, status.Error(c, "failing on purpose")
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, nil
}

func start(t *testing.T) (*flaky, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &flaky{}
	s := grpc.NewServer()
	healthpb.RegisterHealthServer(s, f)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return f, lis.Addr().String()
}

const check = "/grpc.health.v1.Health/Check"

func TestRetriesOnlyIdempotentMethods(t *testing.T) {
	cases := []struct {
		name       string
		idempotent bool
		code       codes.Code
		wantCalls  int32
	}{
		{"idempotent, unavailable: retried", true, codes.Unavailable, 3},
		{"not idempotent, unavailable: once", false, codes.Unavailable, 1},
		{"idempotent, invalid argument: once", true, codes.InvalidArgument, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, addr := start(t)
			f.code.Store(int32(tc.code))
			c := New(prometheus.NewRegistry(), "order")
			defer c.Close()
			conn, err := c.Dial(Target{Name: "user", Addr: addr, Attempts: 3, Backoff: time.Millisecond,
				Idempotent: map[string]bool{check: tc.idempotent}, FailureThreshold: 100})
			if err != nil {
				t.Fatal(err)
			}
			_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
			if status.Code(err) != tc.code {
				t.Fatalf("error %v, want %v", err, tc.code)
			}
			if got := f.calls.Load(); got != tc.wantCalls {
				t.Fatalf("server saw %d calls, want %d", got, tc.wantCalls)
			}
		})
	}
}

// TestRemoteBreakerTextIsNotALocalRefusal: a dependency relaying its own
// dependency's open breaker did receive the call, so IsBreakerOpen must
// not take its answer for a call that was never sent.
func TestRemoteBreakerTextIsNotALocalRefusal(t *testing.T) {
	remote := status.Error(codes.Unavailable, "payment: circuit breaker open")
	if IsBreakerOpen(remote) {
		t.Fatal("a remote UNAVAILABLE was taken for this process's breaker")
	}
	local := fmt.Errorf("charge: %w", &BreakerOpenError{Target: "payment"})
	if !IsBreakerOpen(local) || status.Code(local) != codes.Unavailable {
		t.Fatalf("wrapped refusal: IsBreakerOpen %v, code %v", IsBreakerOpen(local), status.Code(local))
	}
}

func TestBreakerOpensAndRecovers(t *testing.T) {
	f, addr := start(t)
	reg := prometheus.NewRegistry()
	c := New(reg, "order")
	defer c.Close()
	conn, err := c.Dial(Target{Name: "user", Addr: addr, Attempts: 1, FailureThreshold: 3, OpenFor: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Dial(Target{Name: "user", Addr: addr}); err == nil {
		t.Fatal("a second connection to the same dependency was allowed")
	}
	client := healthpb.NewHealthClient(conn)
	call := func() error {
		_, err := client.Check(context.Background(), &healthpb.HealthCheckRequest{})
		return err
	}
	gauge := func() float64 {
		return testutil.ToFloat64(c.state.WithLabelValues("order", "user"))
	}

	f.code.Store(int32(codes.Unavailable))
	for range 3 {
		_ = call()
	}
	if gauge() != 2 {
		t.Fatalf("circuit_breaker_state = %v after 3 failures, want 2 (open)", gauge())
	}
	before := f.calls.Load()
	if err := call(); status.Code(err) != codes.Unavailable || !IsBreakerOpen(err) || !strings.Contains(err.Error(), "user: circuit breaker open") {
		t.Fatalf("open breaker let a call through: %v", err)
	}
	if f.calls.Load() != before {
		t.Fatal("the server was called while the breaker was open")
	}

	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/breakers", nil))
	var doc struct {
		Breakers []BreakerState `json:"breakers"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || len(doc.Breakers) != 1 || doc.Breakers[0].State != "open" {
		t.Fatalf("/debug/breakers = %s (%v)", rec.Body, err)
	}

	f.code.Store(int32(codes.OK))
	time.Sleep(150 * time.Millisecond)
	if err := call(); err != nil {
		t.Fatalf("half-open probe failed: %v", err)
	}
	if gauge() != 0 {
		t.Fatalf("circuit_breaker_state = %v after recovery, want 0", gauge())
	}
	opened := testutil.ToFloat64(c.transitions.WithLabelValues("order", "user", "closed", "open"))
	if opened != 1 {
		t.Fatalf("closed->open transitions = %v, want 1", opened)
	}
}

// TestRefusalAfterASentAttemptIsNotNeverSent: the first attempt reaches
// the server and times out, which trips the breaker, so the retry is
// refused. The call may have landed, so the caller must see the sent
// attempt's error, not a refusal that says nothing left the process.
func TestRefusalAfterASentAttemptIsNotNeverSent(t *testing.T) {
	f, addr := start(t)
	f.stall.Store(true)
	c := New(prometheus.NewRegistry(), "order")
	defer c.Close()
	conn, err := c.Dial(Target{Name: "payment", Addr: addr, Attempts: 3, Backoff: time.Millisecond, Timeout: 50 * time.Millisecond,
		Idempotent: map[string]bool{check: true}, FailureThreshold: 1, OpenFor: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if IsBreakerOpen(err) || status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("error %v (breaker refusal %v), want the sent attempt's DeadlineExceeded", err, IsBreakerOpen(err))
	}
	if got := f.calls.Load(); got != 1 {
		t.Fatalf("server saw %d calls, want 1", got)
	}
	// A call that never gets past the open breaker is a refusal.
	_, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if !IsBreakerOpen(err) {
		t.Fatalf("second call: %v, want the breaker's refusal", err)
	}
}
