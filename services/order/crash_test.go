package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/kit/storage/pgtest"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/servicetest"
	"github.com/msctl/msctl/services/order/internal/store"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// TestCrashStream sends a stream of at least 200 orders while the order
// service process is killed with SIGKILL at random moments and restarted
// on the same database, then lets the resumer finish every saga and
// checks the invariants across the order, payment and inventory
// databases: every order is CONFIRMED with exactly one capture and its
// stock committed, or FAILED with no money kept and no stock held. For
// three seconds without kills, payment is slow: charges capture but
// answer after the order service's deadline, which opens its breaker on
// payment while charges are retried. The order
// service runs on SQLite and on PostgreSQL.
func TestCrashStream(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		crashStream(t, "sqlite://"+filepath.ToSlash(filepath.Join(t.TempDir(), "order.db")))
	})
	t.Run("postgres", func(t *testing.T) {
		_, url := pgtest.Database(t)
		crashStream(t, url)
	})
}

func crashStream(t *testing.T, databaseURL string) {
	const (
		minOrders = 200
		minKills  = 6
		stock     = 120 // per product: most orders get to the charge, the last run out of stock
	)
	user := servicetest.Start(t, "user")
	inv := servicetest.Start(t, "inventory")
	pay := servicetest.Start(t, "payment", "PAYMENT_DECLINE_RATE=0.2")
	slowPay := servicetest.StartStallingPayment(t, pay.GRPC)
	admin := servicetest.AsAdmin(context.Background())
	u, err := userv1.NewUserServiceClient(user.Conn).CreateUser(admin, &userv1.CreateUserRequest{Email: "crash@example.com", FullName: "Crash"})
	if err != nil {
		t.Fatal(err)
	}
	invAPI := inventoryv1.NewInventoryServiceClient(inv.Conn)
	var products []string
	for i := range 2 {
		p, err := invAPI.CreateProduct(admin, &inventoryv1.CreateProductRequest{Sku: fmt.Sprintf("crash-%d", i), Name: "x", PriceCents: 100, InitialStock: stock})
		if err != nil {
			t.Fatal(err)
		}
		products = append(products, p.GetId())
	}

	db, err := storage.Parse(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	env := []string{
		"GRPC_ADDR=" + servicetest.FreeAddr(t), "ADMIN_ADDR=" + servicetest.FreeAddr(t),
		"DATABASE_URL=" + databaseURL,
		"USER_ADDR=" + user.GRPC, "INVENTORY_ADDR=" + inv.GRPC, "PAYMENT_ADDR=" + slowPay.Addr,
		"SAGA_RESUME_INTERVAL=100ms", "SAGA_TIMEOUT=2s",
		"DOWNSTREAM_TIMEOUT=500ms", "BREAKER_FAILURES=2", "BREAKER_OPEN_FOR=300ms",
	}
	var (
		mu    sync.Mutex
		order = servicetest.Start(t, "order", env...)
	)
	current := func() *servicetest.Service {
		mu.Lock()
		defer mu.Unlock()
		return order
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", servicetest.AdminKey)

	var sent atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o := current()
				cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
				_, err := orderv1.NewOrderServiceClient(o.Conn).CreateOrder(cctx, &orderv1.CreateOrderRequest{
					UserId: u.GetId(), PaymentMethodToken: fmt.Sprintf("tok-%d-%d", w, i),
					Items: []*orderv1.Item{{ProductId: products[(w+i)%2], Quantity: 1}}})
				cancel()
				if err == nil || !isDown(err) {
					sent.Add(1)
				} else {
					time.Sleep(20 * time.Millisecond) // the service is restarting
				}
			}
		}()
	}
	kills, interrupted := 0, 0
	slowPhase := false
	for sent.Load() < minOrders || kills < minKills {
		if !slowPhase && sent.Load() >= minOrders/4 {
			// The slow-payment phase: without kills, so that sagas live
			// long enough to retry a charge into an open breaker.
			slowPhase = true
			slowPay.Stall.Store(true)
			time.Sleep(3 * time.Second)
			slowPay.Stall.Store(false)
		}
		time.Sleep(time.Duration(50+rand.IntN(300)) * time.Millisecond)
		mu.Lock()
		order.Kill()
		mu.Unlock()
		kills++
		interrupted += unfinishedInDB(t, db)
		restarted := servicetest.Start(t, "order", env...)
		mu.Lock()
		order = restarted
		mu.Unlock()
	}
	close(stop)
	wg.Wait()

	// Every saga must finish: the resumer drives the ones the kills left.
	orders := listOrders(t, ctx, orderv1.NewOrderServiceClient(current().Conn))
	deadline := time.Now().Add(60 * time.Second)
	for unfinished(orders) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d sagas still unfinished after a minute", unfinished(orders))
		}
		time.Sleep(200 * time.Millisecond)
		orders = listOrders(t, ctx, orderv1.NewOrderServiceClient(current().Conn))
	}
	if len(orders) < minOrders {
		t.Fatalf("only %d orders stored, want at least %d", len(orders), minOrders)
	}

	payments := map[string][]*paymentv1.Payment{}
	payAPI := paymentv1.NewPaymentServiceClient(pay.Conn)
	for tok := ""; ; {
		resp, err := payAPI.ListPayments(admin, &paymentv1.ListPaymentsRequest{PageSize: 500, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range resp.GetPayments() {
			payments[p.GetOrderId()] = append(payments[p.GetOrderId()], p)
		}
		if tok = resp.GetNextPageToken(); tok == "" {
			break
		}
	}
	sold := map[string]int64{}
	counts := map[orderv1.OrderStatus]int{}
	for _, o := range orders {
		counts[o.GetStatus()]++
		captured, refunded := 0, 0
		for _, p := range payments[o.GetId()] {
			switch p.GetStatus() {
			case paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED:
				captured++
			case paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED:
				refunded++
			}
		}
		switch o.GetStatus() {
		case orderv1.OrderStatus_ORDER_STATUS_CONFIRMED:
			if captured != 1 || refunded != 0 {
				t.Errorf("confirmed order %s: %d captured, %d refunded payments; want exactly one capture", o.GetId(), captured, refunded)
			}
			for _, it := range o.GetItems() {
				sold[it.GetProductId()] += it.GetQuantity()
			}
		case orderv1.OrderStatus_ORDER_STATUS_FAILED:
			if captured != 0 || refunded > 1 {
				t.Errorf("failed order %s (%s): %d captured, %d refunded payments; want no money kept", o.GetId(), o.GetFailureReason(), captured, refunded)
			}
		}
	}
	// No payment may belong to an order the order service does not know.
	known := map[string]bool{}
	for _, o := range orders {
		known[o.GetId()] = true
	}
	for id, ps := range payments {
		for _, p := range ps {
			if !known[id] && p.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED {
				t.Errorf("payment %s captured for unknown order %s", p.GetId(), id)
			}
		}
	}
	// Stock: nothing held by a pending reservation, and what left stock
	// for good is exactly what confirmed orders bought.
	for _, id := range products {
		p, err := invAPI.GetProduct(admin, &inventoryv1.GetProductRequest{Id: id})
		if err != nil {
			t.Fatal(err)
		}
		if p.GetReserved() != 0 || stock-p.GetAvailable() != sold[id] {
			t.Errorf("product %s: %d available, %d reserved; confirmed orders bought %d of %d", id, p.GetAvailable(), p.GetReserved(), sold[id], stock)
		}
	}
	t.Logf("%d orders (%d confirmed, %d failed), %d kills leaving %d sagas unfinished, %d charges answered late", len(orders),
		counts[orderv1.OrderStatus_ORDER_STATUS_CONFIRMED], counts[orderv1.OrderStatus_ORDER_STATUS_FAILED], kills, interrupted, slowPay.Stalled.Load())
	if interrupted == 0 {
		t.Fatal("no kill interrupted a saga, so nothing was resumed")
	}
	if slowPay.Stalled.Load() == 0 {
		t.Fatal("the slow-payment phase held no charge's answer")
	}
	if counts[orderv1.OrderStatus_ORDER_STATUS_CONFIRMED] == 0 || counts[orderv1.OrderStatus_ORDER_STATUS_FAILED] == 0 {
		t.Fatalf("want both outcomes exercised, got %v", counts)
	}
}

// unfinishedInDB counts the sagas a kill left unfinished, read from the
// order database while no process runs on it.
func unfinishedInDB(t *testing.T, db storage.Location) int {
	t.Helper()
	s, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	open, err := s.Unfinished(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return len(open)
}

// isDown reports whether a CreateOrder never reached a live order service.
func isDown(err error) bool {
	return err != nil && (strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "error reading from server") ||
		strings.Contains(err.Error(), "database not ready"))
}

func listOrders(t *testing.T, ctx context.Context, c orderv1.OrderServiceClient) []*orderv1.Order {
	t.Helper()
	var out []*orderv1.Order
	for tok := ""; ; {
		resp, err := c.ListOrders(ctx, &orderv1.ListOrdersRequest{PageSize: 500, PageToken: tok})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, resp.GetOrders()...)
		if tok = resp.GetNextPageToken(); tok == "" {
			return out
		}
	}
}

func unfinished(orders []*orderv1.Order) int {
	n := 0
	for _, o := range orders {
		if s := o.GetStatus(); s == orderv1.OrderStatus_ORDER_STATUS_PENDING || s == orderv1.OrderStatus_ORDER_STATUS_COMPENSATING {
			n++
		}
	}
	return n
}
