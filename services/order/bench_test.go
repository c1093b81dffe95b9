package main

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/kit/loadgen"
	"github.com/msctl/msctl/services/kit/storage/pgtest"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/servicetest"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// BenchmarkCreateOrder measures orders end to end: the four service
// binaries on loopback, each on its own database, at the production log
// level, the order service driven over gRPC. It finds the peak (closed
// loop, 16 callers, 5s), then offers half of it open loop for 10s and
// reports CreateOrder's latency at that load. Run it with -benchtime=1x;
// hack/bench/order.sh does, and docs/benchmarks.md records the figures.
func BenchmarkCreateOrder(b *testing.B) {
	for _, store := range []string{"sqlite", "postgres"} {
		b.Run(store, func(b *testing.B) {
			call := orderSystem(b, store)
			closed, open := 5*time.Second, 10*time.Second
			if testing.Short() { // make test's smoke run: does it still work?
				closed, open = 500*time.Millisecond, 500*time.Millisecond
			}
			for range b.N {
				peak, err := loadgen.ClosedLoop(context.Background(), 16, closed, call)
				if err != nil {
					b.Fatal(err)
				}
				lat, err := loadgen.OpenLoop(context.Background(), peak/2, open, call)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(peak, "peak-orders/s")
				b.ReportMetric(peak/2, "offered-orders/s")
				b.ReportMetric(float64(loadgen.Percentile(lat, 0.50).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(loadgen.Percentile(lat, 0.99).Microseconds())/1000, "p99-ms")
			}
		})
	}
}

// orderSystem starts the four services on store ("sqlite" or "postgres",
// one fresh database per service) with a user and a product nobody can sell
// out of, and returns one successful CreateOrder.
func orderSystem(b *testing.B, store string) loadgen.Call {
	db := func(string) []string { return nil } // each service's own SQLite file
	if store == "postgres" {
		db = func(string) []string {
			_, url := pgtest.Database(b)
			return []string{"DATABASE_URL=" + url}
		}
	}
	start := func(name string, env ...string) *servicetest.Service {
		return servicetest.Start(b, name, append(append(db(name), "LOG_LEVEL=info"), env...)...)
	}
	user, inv, pay := start("user"), start("inventory"), start("payment")
	order := start("order",
		"USER_ADDR="+user.GRPC, "INVENTORY_ADDR="+inv.GRPC, "PAYMENT_ADDR="+pay.GRPC)

	admin := servicetest.AsAdmin(context.Background())
	u, err := userv1.NewUserServiceClient(user.Conn).CreateUser(admin, &userv1.CreateUserRequest{Email: "bench@example.com", FullName: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	p, err := inventoryv1.NewInventoryServiceClient(inv.Conn).CreateProduct(admin, &inventoryv1.CreateProductRequest{
		Sku: "bench", Name: "Bench", PriceCents: 100, InitialStock: 1_000_000_000})
	if err != nil {
		b.Fatal(err)
	}
	orders := orderv1.NewOrderServiceClient(order.Conn)
	req := &orderv1.CreateOrderRequest{UserId: u.GetId(), PaymentMethodToken: "tok_bench",
		Items: []*orderv1.Item{{ProductId: p.GetId(), Quantity: 1}}}
	return func(ctx context.Context) error {
		o, err := orders.CreateOrder(metadata.AppendToOutgoingContext(ctx, "x-api-key", servicetest.AdminKey), req)
		if err != nil {
			return err
		}
		if o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_CONFIRMED {
			return fmt.Errorf("order %s ended %s: %s", o.GetId(), o.GetStatus(), o.GetFailureReason())
		}
		return nil
	}
}
