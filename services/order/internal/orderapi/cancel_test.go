package orderapi

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/kit/downstream"
	"github.com/msctl/msctl/services/kit/experiments"
	"github.com/msctl/msctl/services/kit/logging"
	"github.com/msctl/msctl/services/kit/storage"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/domain"
	"github.com/msctl/msctl/services/order/internal/saga"
	"github.com/msctl/msctl/services/order/internal/store"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
)

// compensations answers the two compensating calls, with down making
// them UNAVAILABLE; every other method is left nil and would panic,
// which is the point: cancel must only compensate.
type compensations struct {
	inventoryv1.InventoryServiceClient
	paymentv1.PaymentServiceClient
	down             bool
	refunds, release int
}

func (c *compensations) Refund(context.Context, *paymentv1.RefundRequest, ...grpc.CallOption) (*paymentv1.Payment, error) {
	if c.down {
		return nil, &downstream.BreakerOpenError{Target: "payment"}
	}
	c.refunds++
	return &paymentv1.Payment{Status: paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED}, nil
}

func (c *compensations) ReleaseStock(context.Context, *inventoryv1.ReleaseStockRequest, ...grpc.CallOption) (*inventoryv1.Reservation, error) {
	if c.down {
		return nil, &downstream.BreakerOpenError{Target: "inventory"}
	}
	c.release++
	return &inventoryv1.Reservation{State: inventoryv1.ReservationState_RESERVATION_STATE_RELEASED}, nil
}

func newServer(t *testing.T, c *compensations) (*Server, store.Store) {
	t.Helper()
	s, err := store.Open(context.Background(), storage.Location{Dialect: storage.SQLite, Path: filepath.Join(t.TempDir(), "order.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	reg := prometheus.NewRegistry()
	open := func() store.Store { return s }
	sg, err := saga.New(open, saga.Deps{Inventory: c, Payments: c}, reg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	x, err := experiments.NewExposures(reg)
	if err != nil {
		t.Fatal(err)
	}
	return New(open, sg, logging.Discard(), experiments.Experiment{}, x, 5*time.Second), s
}

// stored puts an order in the store at step, as a saga interrupted there
// would have left it.
func stored(t *testing.T, s store.Store, steps ...domain.Step) domain.Order {
	t.Helper()
	o, err := domain.NewOrder("u", []domain.Item{{ProductID: "p", Quantity: 1}}, "tok", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range steps {
		o.Begin(step)
	}
	if err := s.Create(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	return o
}

func TestCancel(t *testing.T) {
	ctx := context.Background()
	t.Run("a charged order is refunded and released", func(t *testing.T) {
		c := &compensations{}
		srv, s := newServer(t, c)
		o := stored(t, s, domain.StepReserve, domain.StepCharge)
		got, err := srv.CancelOrder(ctx, &orderv1.CancelOrderRequest{Id: o.ID})
		if err != nil || got.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_FAILED || got.GetFailureReason() != "cancelled" {
			t.Fatalf("CancelOrder: %v, %v", got, err)
		}
		if c.refunds != 1 || c.release != 1 {
			t.Fatalf("%d refunds, %d releases; want one each", c.refunds, c.release)
		}
	})
	t.Run("with dependencies down the cancel stands, compensating", func(t *testing.T) {
		c := &compensations{down: true}
		srv, s := newServer(t, c)
		o := stored(t, s, domain.StepReserve, domain.StepCharge)
		got, err := srv.CancelOrder(ctx, &orderv1.CancelOrderRequest{Id: o.ID})
		if err != nil || got.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_COMPENSATING {
			t.Fatalf("CancelOrder: %v, %v", got, err)
		}
		after, _ := s.Get(ctx, o.ID)
		if after.Status != domain.Compensating || !after.OwesRefund || !after.OwesRelease || after.Reason != "cancelled" {
			t.Fatalf("stored: %+v", after)
		}
	})
	t.Run("finished or confirming orders are refused, unchanged", func(t *testing.T) {
		c := &compensations{}
		srv, s := newServer(t, c)
		confirming := stored(t, s, domain.StepReserve, domain.StepCharge, domain.StepConfirm)
		done := stored(t, s)
		done.Confirm()
		if _, err := s.Update(ctx, done, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{confirming.ID, done.ID} {
			before, _ := s.Get(ctx, id)
			if _, err := srv.CancelOrder(ctx, &orderv1.CancelOrderRequest{Id: id}); status.Code(err) != codes.FailedPrecondition {
				t.Errorf("cancel %s (%s at %s): %v", id, before.Status, before.Step, err)
			}
			if after, _ := s.Get(ctx, id); after.Version != before.Version {
				t.Errorf("refused cancel changed %s", id)
			}
		}
		if _, err := srv.CancelOrder(ctx, &orderv1.CancelOrderRequest{Id: "no-such-order"}); status.Code(err) != codes.NotFound {
			t.Errorf("cancel of an unknown order: %v", err)
		}
		if c.refunds+c.release != 0 {
			t.Errorf("refused cancels compensated: %+v", c)
		}
	})
}
