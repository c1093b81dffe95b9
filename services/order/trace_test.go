package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/servicetest"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// span is what the test needs of one exported span.
type span struct {
	service, name     string
	trace, id, parent string
	kind              tracepb.Span_SpanKind
}

// collector is an OTLP/gRPC trace receiver keeping every span it is sent.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu    sync.Mutex
	spans []span
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rs := range req.GetResourceSpans() {
		var service string
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, s := range ss.GetSpans() {
				c.spans = append(c.spans, span{service: service, name: s.GetName(), kind: s.GetKind(),
					trace: hex.EncodeToString(s.GetTraceId()), id: hex.EncodeToString(s.GetSpanId()),
					parent: hex.EncodeToString(s.GetParentSpanId())})
			}
		}
	}
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

func (c *collector) trace(id string) []span {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []span
	for _, s := range c.spans {
		if s.trace == id {
			out = append(out, s)
		}
	}
	return out
}

// TestOneOrderIsOneTrace runs the four service binaries exporting to a
// real OTLP receiver, places one order under a known W3C traceparent and
// checks that every service's spans for it carry that trace id and hang
// from one tree: each span's parent is another span of the trace, or the
// caller's span for the order service's entry point.
func TestOneOrderIsOneTrace(t *testing.T) {
	col := &collector{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(srv, col)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	otel := []string{"OTEL_EXPORTER_OTLP_ENDPOINT=http://" + l.Addr().String(),
		"OTEL_EXPORTER_OTLP_PROTOCOL=grpc", "OTEL_BSP_SCHEDULE_DELAY=50"}

	user := servicetest.Start(t, "user", otel...)
	inv := servicetest.Start(t, "inventory", otel...)
	pay := servicetest.Start(t, "payment", otel...)
	order := servicetest.Start(t, "order", append(otel,
		"USER_ADDR="+user.GRPC, "INVENTORY_ADDR="+inv.GRPC, "PAYMENT_ADDR="+pay.GRPC)...)
	admin := servicetest.AsAdmin(context.Background())
	u, err := userv1.NewUserServiceClient(user.Conn).CreateUser(admin, &userv1.CreateUserRequest{Email: "trace@example.com", FullName: "Trace"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := inventoryv1.NewInventoryServiceClient(inv.Conn).CreateProduct(admin, &inventoryv1.CreateProductRequest{
		Sku: "trace", Name: "Trace", PriceCents: 100, InitialStock: 1})
	if err != nil {
		t.Fatal(err)
	}

	const traceID, callerSpan = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	ctx := metadata.AppendToOutgoingContext(admin, "traceparent", "00-"+traceID+"-"+callerSpan+"-01")
	o, err := orderv1.NewOrderServiceClient(order.Conn).CreateOrder(ctx, &orderv1.CreateOrderRequest{
		UserId: u.GetId(), PaymentMethodToken: "tok", Items: []*orderv1.Item{{ProductId: p.GetId(), Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	if o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_CONFIRMED {
		t.Fatalf("order ended %s: %s", o.GetStatus(), o.GetFailureReason())
	}

	// Each service's server span for its part of the saga, named by
	// otelgrpc after the full method.
	want := map[string]string{
		"order":     "msctl.order.v1.OrderService/CreateOrder",
		"user":      "msctl.user.v1.UserService/GetUser",
		"inventory": "msctl.inventory.v1.InventoryService/ReserveStock",
		"payment":   "msctl.payment.v1.PaymentService/Charge",
	}
	var spans []span
	deadline := time.Now().Add(10 * time.Second)
	for {
		spans = col.trace(traceID)
		if missing := missingServers(spans, want); len(missing) == 0 {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("no server span in trace %s for %v; got:\n%s", traceID, missing, dump(spans))
		}
		time.Sleep(50 * time.Millisecond)
	}
	ids := map[string]bool{callerSpan: true}
	for _, s := range spans {
		ids[s.id] = true
	}
	for _, s := range spans {
		if !ids[s.parent] {
			t.Errorf("%s span %q has parent %q outside the trace:\n%s", s.service, s.name, s.parent, dump(spans))
		}
	}
	for _, s := range spans {
		if s.parent == callerSpan && (s.service != "order" || s.name != want["order"]) {
			t.Errorf("%s span %q hangs from the caller, want only order's CreateOrder", s.service, s.name)
		}
	}
}

// missingServers lists the services in want with no server span of the
// wanted name among spans.
func missingServers(spans []span, want map[string]string) []string {
	var missing []string
	for service, name := range want {
		if !slices.ContainsFunc(spans, func(s span) bool {
			return s.service == service && s.name == name && s.kind == tracepb.Span_SPAN_KIND_SERVER
		}) {
			missing = append(missing, service)
		}
	}
	slices.Sort(missing)
	return missing
}

func dump(spans []span) string {
	var b strings.Builder
	for _, s := range spans {
		fmt.Fprintf(&b, "  %-9s %-45s %s span=%s parent=%s\n", s.service, s.name, s.kind, s.id, s.parent)
	}
	return b.String()
}
