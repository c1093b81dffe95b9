package saga_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/kit/downstream"
	"github.com/msctl/msctl/services/kit/host/hosttest"
	"github.com/msctl/msctl/services/kit/logging"
	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/order/internal/deps"
	"github.com/msctl/msctl/services/order/internal/domain"
	"github.com/msctl/msctl/services/order/internal/saga"
	"github.com/msctl/msctl/services/order/internal/servicetest"
	"github.com/msctl/msctl/services/order/internal/store"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

const declineCard = "tok-always-declines"

func TestMain(m *testing.M) { servicetest.Main(m) }

// world is the three dependencies, a user and two products.
type world struct {
	user, inventory, payment *servicetest.Service
	userID                   string
	products                 []string // each priced 250 cents with 10 in stock
}

func newWorld(t *testing.T) *world {
	t.Helper()
	ctx := servicetest.AsAdmin(context.Background())
	w := &world{
		user:      servicetest.Start(t, "user"),
		inventory: servicetest.Start(t, "inventory"),
		payment:   servicetest.Start(t, "payment", "PAYMENT_DECLINE_CARDS="+declineCard),
	}
	u, err := userv1.NewUserServiceClient(w.user.Conn).CreateUser(ctx, &userv1.CreateUserRequest{Email: "ada@example.com", FullName: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	w.userID = u.GetId()
	for i := range 2 {
		p, err := inventoryv1.NewInventoryServiceClient(w.inventory.Conn).CreateProduct(ctx, &inventoryv1.CreateProductRequest{
			Sku: fmt.Sprintf("sku-%d", i), Name: "thing", PriceCents: 250, InitialStock: 10})
		if err != nil {
			t.Fatal(err)
		}
		w.products = append(w.products, p.GetId())
	}
	return w
}

// order is the saga under test and what it reports.
type order struct {
	saga  *saga.Saga
	store store.Store
	reg   *prometheus.Registry
}

// newSaga builds a saga over dbPath, talking to w (inventoryAddr overrides
// inventory's address, e.g. with one nothing listens on).
func newSaga(t *testing.T, w *world, dbPath, inventoryAddr string) *order {
	t.Helper()
	return newSagaWith(t, w, dbPath, func(c *deps.Config) {
		if inventoryAddr != "" {
			c.InventoryAddr = inventoryAddr
		}
	})
}

// newSagaWith builds a saga over dbPath, talking to w with the
// dependency settings edit leaves.
func newSagaWith(t *testing.T, w *world, dbPath string, edit func(*deps.Config)) *order {
	t.Helper()
	s, err := store.Open(context.Background(), storage.Location{Dialect: storage.SQLite, Path: dbPath})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	reg := prometheus.NewRegistry()
	clients := downstream.New(reg, "order")
	t.Cleanup(func() { _ = clients.Close() })
	// The key the services accept, read from a file laid out as the
	// mounted Secret, as the order service reads it.
	key, err := downstream.LoadAPIKey(hosttest.KeysEnv(t)["DOWNSTREAM_API_KEY_FILE"])
	if err != nil {
		t.Fatal(err)
	}
	cfg := deps.Config{UserAddr: w.user.GRPC, InventoryAddr: w.inventory.GRPC, PaymentAddr: w.payment.GRPC,
		Key: key, Timeout: 500 * time.Millisecond, FailureThreshold: 3, OpenFor: time.Minute}
	edit(&cfg)
	d, err := deps.Dial(clients, cfg)
	if err != nil {
		t.Fatal(err)
	}
	sg, err := saga.New(func() store.Store { return s }, d, reg, logging.Discard())
	if err != nil {
		t.Fatal(err)
	}
	return &order{saga: sg, store: s, reg: reg}
}

func (w *world) newOrder(t *testing.T, token string, qty int64) domain.Order {
	t.Helper()
	o, err := domain.NewOrder(w.userID, []domain.Item{{ProductID: w.products[0], Quantity: qty}, {ProductID: w.products[1], Quantity: 1}},
		token, "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// stock returns the first product's available and reserved units.
func (w *world) stock(t *testing.T) (available, reserved int64) {
	t.Helper()
	p, err := inventoryv1.NewInventoryServiceClient(w.inventory.Conn).GetProduct(servicetest.AsAdmin(context.Background()),
		&inventoryv1.GetProductRequest{Id: w.products[0]})
	if err != nil {
		t.Fatal(err)
	}
	return p.GetAvailable(), p.GetReserved()
}

// payments lists every charge attempt of orderID.
func (w *world) payments(t *testing.T, orderID string) []*paymentv1.Payment {
	t.Helper()
	resp, err := paymentv1.NewPaymentServiceClient(w.payment.Conn).ListPayments(servicetest.AsAdmin(context.Background()),
		&paymentv1.ListPaymentsRequest{PageSize: 500})
	if err != nil {
		t.Fatal(err)
	}
	var out []*paymentv1.Payment
	for _, p := range resp.GetPayments() {
		if p.GetOrderId() == orderID {
			out = append(out, p)
		}
	}
	return out
}

func (w *world) reservation(t *testing.T, orderID string) inventoryv1.ReservationState {
	t.Helper()
	// A repeated reserve with the same items answers the reservation as it is.
	r, err := inventoryv1.NewInventoryServiceClient(w.inventory.Conn).ReserveStock(servicetest.AsAdmin(context.Background()),
		&inventoryv1.ReserveStockRequest{OrderId: orderID, Items: []*inventoryv1.Item{
			{ProductId: w.products[0], Quantity: 2}, {ProductId: w.products[1], Quantity: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	return r.GetState()
}

// finished reads order_saga_finished_total{outcome} from the saga's registry.
func finished(t *testing.T, o *order, outcome string) float64 {
	t.Helper()
	mfs, err := o.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "order_saga_finished_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("order_saga_finished_total{outcome=%q} is not registered", outcome)
	return 0
}

func TestSuccessfulOrder(t *testing.T) {
	w := newWorld(t)
	o := newSaga(t, w, filepath.Join(t.TempDir(), "order.db"), "")
	got, err := o.saga.Create(context.Background(), w.newOrder(t, "tok-4242", 2))
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	if got.Status != domain.Confirmed || got.AmountCents != 750 || got.OwesRefund || got.OwesRelease {
		t.Fatalf("order: %+v", got)
	}
	// The two-item cart was priced with one call, not one per item.
	if batch, single := handled(t, w.inventory, inventoryv1.InventoryService_BatchGetProducts_FullMethodName),
		handled(t, w.inventory, inventoryv1.InventoryService_GetProduct_FullMethodName); batch != 1 || single != 0 {
		t.Fatalf("inventory answered %v BatchGetProducts and %v GetProduct calls; want 1 and 0", batch, single)
	}
	if avail, reserved := w.stock(t); avail != 8 || reserved != 0 {
		t.Fatalf("stock: %d available, %d reserved; want 8 and 0 (committed)", avail, reserved)
	}
	if st := w.reservation(t, got.ID); st != inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED {
		t.Fatalf("reservation %s, want committed", st)
	}
	ps := w.payments(t, got.ID)
	if len(ps) != 1 || ps[0].GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED || ps[0].GetAmount() != 750 ||
		ps[0].GetIdempotencyKey() != got.ID {
		t.Fatalf("payments: %v", ps)
	}
	if n := finished(t, o, "confirmed"); n != 1 {
		t.Fatalf("order_saga_finished_total{outcome=confirmed} = %v", n)
	}
}

// handled sums svc's grpc_server_handled_total for method, read from its
// /metrics.
func handled(t *testing.T, svc *servicetest.Service, method string) float64 {
	t.Helper()
	resp, err := http.Get("http://" + svc.Admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, m := range mfs["grpc_server_handled_total"].GetMetric() {
		for _, l := range m.GetLabel() {
			if l.GetName() == "method" && l.GetValue() == method {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

func TestDeclinedPaymentCompensates(t *testing.T) {
	w := newWorld(t)
	o := newSaga(t, w, filepath.Join(t.TempDir(), "order.db"), "")
	got, err := o.saga.Create(context.Background(), w.newOrder(t, declineCard, 2))
	var fe *saga.FailedError
	if !errors.As(err, &fe) || fe.Unavailable {
		t.Fatalf("Create: %v, want a FailedError for a refusal", err)
	}
	if got.Status != domain.Failed || !strings.HasPrefix(got.Reason, "payment declined") || got.OwesRefund || got.OwesRelease {
		t.Fatalf("order: %+v", got)
	}
	if avail, reserved := w.stock(t); avail != 10 || reserved != 0 {
		t.Fatalf("stock: %d available, %d reserved; want 10 and 0 (released)", avail, reserved)
	}
	if st := w.reservation(t, got.ID); st != inventoryv1.ReservationState_RESERVATION_STATE_RELEASED {
		t.Fatalf("reservation %s, want released", st)
	}
	if ps := w.payments(t, got.ID); len(ps) != 1 || ps[0].GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED {
		t.Fatalf("payments: %v", ps)
	}
	if n := finished(t, o, "failed"); n != 1 {
		t.Fatalf("order_saga_finished_total{outcome=failed} = %v", n)
	}
}

func TestUnknownUserAndTooLittleStockFail(t *testing.T) {
	w := newWorld(t)
	o := newSaga(t, w, filepath.Join(t.TempDir(), "order.db"), "")
	noUser := w.newOrder(t, "tok", 1)
	noUser.UserID = "01900000-0000-7000-8000-000000000000"
	got, err := o.saga.Create(context.Background(), noUser)
	var fe *saga.FailedError
	if !errors.As(err, &fe) || got.Status != domain.Failed || !strings.HasPrefix(got.Reason, "user:") {
		t.Fatalf("unknown user: %v, %+v", err, got)
	}
	got, err = o.saga.Create(context.Background(), w.newOrder(t, "tok", 11))
	if !errors.As(err, &fe) || got.Status != domain.Failed || !strings.HasPrefix(got.Reason, "inventory:") {
		t.Fatalf("too little stock: %v, %+v", err, got)
	}
	if avail, reserved := w.stock(t); avail != 10 || reserved != 0 {
		t.Fatalf("stock: %d available, %d reserved; want 10 and 0", avail, reserved)
	}
	if ps := w.payments(t, got.ID); len(ps) != 0 {
		t.Fatalf("charged for a failed reservation: %v", ps)
	}
}

func TestInventoryDownOpensBreakerAndFailsFast(t *testing.T) {
	w := newWorld(t)
	o := newSaga(t, w, filepath.Join(t.TempDir(), "order.db"), servicetest.FreeAddr(t))
	var last string
	for i := range 6 {
		got, err := o.saga.Create(context.Background(), w.newOrder(t, "tok", 1))
		last = got.Reason
		var fe *saga.FailedError
		if !errors.As(err, &fe) || !fe.Unavailable || got.Status != domain.Failed ||
			!strings.HasPrefix(got.Reason, "inventory unavailable") {
			t.Fatalf("order %d: %v, %+v", i, err, got)
		}
		if ps := w.payments(t, got.ID); len(ps) != 0 {
			t.Fatalf("order %d charged while inventory was down: %v", i, ps)
		}
	}
	// Failing fast: the last orders never dialled inventory at all.
	if !strings.HasSuffix(last, "inventory: circuit breaker open") {
		t.Fatalf("last order failed with %q, want the breaker's refusal", last)
	}
	if err := testutil.GatherAndCompare(o.reg, strings.NewReader(`
# HELP circuit_breaker_state Breaker state per dependency: 0 closed, 1 half-open, 2 open.
# TYPE circuit_breaker_state gauge
circuit_breaker_state{service="order",target="inventory"} 2
circuit_breaker_state{service="order",target="payment"} 0
circuit_breaker_state{service="order",target="user"} 0
`), "circuit_breaker_state"); err != nil {
		t.Fatal(err)
	}
	if n := finished(t, o, "failed"); n != 6 {
		t.Fatalf("order_saga_finished_total{outcome=failed} = %v, want 6", n)
	}
}

// TestResumeAfterCrash kills the saga right after each step's remote call
// landed, before its outcome was stored, then resumes with a new saga over
// the same database, as a restarted process would.
func TestResumeAfterCrash(t *testing.T) {
	w := newWorld(t)
	for i, step := range []domain.Step{domain.StepReserve, domain.StepCharge, domain.StepConfirm} {
		t.Run(string(step), func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "order.db")
			crashing := newSaga(t, w, db, "")
			saga.CrashAfter(crashing.saga, step)
			o := w.newOrder(t, "tok-4242", 2)
			if _, err := crashing.saga.Create(context.Background(), o); !errors.Is(err, saga.ErrCrashed) {
				t.Fatalf("Create: %v, want the simulated crash", err)
			}
			stored, err := crashing.store.Get(context.Background(), o.ID)
			if err != nil || stored.Status != domain.Pending || stored.Step != step {
				t.Fatalf("state left by the crash: %+v, %v", stored, err)
			}
			crashing.store.Close()

			restarted := newSaga(t, w, db, "")
			if n, err := restarted.saga.Resume(context.Background(), saga.ResumePolicy{}); err != nil || n != 1 {
				t.Fatalf("Resume: %d finished, %v", n, err)
			}
			got, err := restarted.store.Get(context.Background(), o.ID)
			if err != nil || got.Status != domain.Confirmed {
				t.Fatalf("after resume: %+v, %v", got, err)
			}
			if ps := w.payments(t, o.ID); len(ps) != 1 || ps[0].GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED {
				t.Fatalf("payments: %v, want exactly one capture", ps)
			}
			if st := w.reservation(t, o.ID); st != inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED {
				t.Fatalf("reservation %s, want committed", st)
			}
			if avail, reserved := w.stock(t); avail != int64(10-2*(i+1)) || reserved != 0 {
				t.Fatalf("stock: %d available, %d reserved", avail, reserved)
			}
			if n, err := restarted.saga.Resume(context.Background(), saga.ResumePolicy{}); err != nil || n != 0 {
				t.Fatalf("second Resume: %d finished, %v; want nothing left", n, err)
			}
		})
	}
}

// TestCancelCompensates cancels an order stopped (crashed) after its
// charge landed: the resumer must refund and release.
func TestCancelCompensates(t *testing.T) {
	w := newWorld(t)
	db := filepath.Join(t.TempDir(), "order.db")
	crashing := newSaga(t, w, db, "")
	saga.CrashAfter(crashing.saga, domain.StepCharge)
	o := w.newOrder(t, "tok-4242", 2)
	if _, err := crashing.saga.Create(context.Background(), o); !errors.Is(err, saga.ErrCrashed) {
		t.Fatalf("Create: %v", err)
	}
	stored, _ := crashing.store.Get(context.Background(), o.ID)
	if err := stored.Cancel(); err != nil {
		t.Fatal(err)
	}
	if _, err := crashing.store.Update(context.Background(), stored, time.Now()); err != nil {
		t.Fatal(err)
	}
	crashing.store.Close()
	restarted := newSaga(t, w, db, "")
	if n, err := restarted.saga.Resume(context.Background(), saga.ResumePolicy{}); err != nil || n != 1 {
		t.Fatalf("Resume: %d, %v", n, err)
	}
	got, _ := restarted.store.Get(context.Background(), o.ID)
	if got.Status != domain.Failed || got.Reason != "cancelled" {
		t.Fatalf("order: %+v", got)
	}
	if ps := w.payments(t, o.ID); len(ps) != 1 || ps[0].GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED {
		t.Fatalf("payments: %v, want one refunded", ps)
	}
	if avail, reserved := w.stock(t); avail != 10 || reserved != 0 {
		t.Fatalf("stock: %d available, %d reserved; want all back", avail, reserved)
	}
}

// TestLateCallAfterCompensationFails covers a reserve or charge that
// lands after the saga compensated it without knowing its outcome (the
// call timed out): the compensation (a release or refund that found
// nothing) is recorded by the dependency, the late call is refused, and
// the saga treats the refusal as a failure that is already compensated.
// Here the compensation is sent first and the saga's own call is the
// late one.
func TestLateCallAfterCompensationFails(t *testing.T) {
	admin := servicetest.AsAdmin(context.Background())
	for _, late := range []string{"reserve", "charge"} {
		t.Run(late, func(t *testing.T) {
			w := newWorld(t)
			o := newSaga(t, w, filepath.Join(t.TempDir(), "order.db"), "")
			ord := w.newOrder(t, "tok-4242", 2)
			var err error
			if late == "reserve" {
				_, err = inventoryv1.NewInventoryServiceClient(w.inventory.Conn).ReleaseStock(admin, &inventoryv1.ReleaseStockRequest{OrderId: ord.ID})
			} else {
				_, err = paymentv1.NewPaymentServiceClient(w.payment.Conn).Refund(admin, &paymentv1.RefundRequest{OrderId: ord.ID})
			}
			if status.Code(err) != codes.NotFound {
				t.Fatalf("compensation before the call: %v, want NotFound", err)
			}
			got, err := o.saga.Create(context.Background(), ord)
			var fe *saga.FailedError
			if !errors.As(err, &fe) || fe.Unavailable {
				t.Fatalf("Create: %v, want a FailedError for a refusal", err)
			}
			if got.Status != domain.Failed || !strings.Contains(got.Reason, "was cancelled before") || got.OwesRefund || got.OwesRelease {
				t.Fatalf("order: %+v", got)
			}
			if ps := w.payments(t, ord.ID); len(ps) != 0 {
				t.Fatalf("payments: %v, want none", ps)
			}
			if avail, reserved := w.stock(t); avail != 10 || reserved != 0 {
				t.Fatalf("stock: %d available, %d reserved; want 10 and 0", avail, reserved)
			}
		})
	}
}

// TestChargeThatLandsThenTimesOutIsNeverKept: payment captures, then its
// answer is lost past the call's deadline; that timeout trips payment's
// breaker (threshold 1), so the retry is refused. The saga must not take
// the refusal for a charge that never happened: the order ends FAILED and
// refunded, or CONFIRMED, never FAILED with the money captured.
func TestChargeThatLandsThenTimesOutIsNeverKept(t *testing.T) {
	w := newWorld(t)
	pay := servicetest.StartStallingPayment(t, w.payment.GRPC)
	pay.Stall.Store(true)
	o := newSagaWith(t, w, filepath.Join(t.TempDir(), "order.db"), func(c *deps.Config) {
		c.PaymentAddr, c.Timeout, c.FailureThreshold, c.OpenFor = pay.Addr, 300*time.Millisecond, 1, 500*time.Millisecond
	})
	ord := w.newOrder(t, "tok-4242", 2)
	_, err := o.saga.Create(context.Background(), ord)
	if pay.Stalled.Load() == 0 {
		t.Fatalf("Create: %v; no charge was stalled, so the scenario did not happen", err)
	}
	pay.Stall.Store(false)
	got := resumeUntilFinished(t, o, ord.ID)
	ps := w.payments(t, ord.ID)
	captured := 0
	for _, p := range ps {
		if p.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED {
			captured++
		}
	}
	switch got.Status {
	case domain.Failed:
		if captured != 0 || len(ps) != 1 || ps[0].GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_REFUNDED {
			t.Fatalf("order FAILED (%s) with payments %v; want the one charge refunded", got.Reason, ps)
		}
		if avail, reserved := w.stock(t); avail != 10 || reserved != 0 {
			t.Fatalf("stock: %d available, %d reserved; want 10 and 0", avail, reserved)
		}
	case domain.Confirmed:
		if captured != 1 {
			t.Fatalf("order CONFIRMED with payments %v; want one capture", ps)
		}
	}
}

// resumeUntilFinished resumes o's sagas until order id is final, as the
// background resumer would, and returns it.
func resumeUntilFinished(t *testing.T, o *order, id string) domain.Order {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := o.store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status.Finished() {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("order still %s at step %s (refund owed %v) after 20 s of resuming", got.Status, got.Step, got.OwesRefund)
		}
		time.Sleep(200 * time.Millisecond)
		if _, err := o.saga.Resume(context.Background(), saga.ResumePolicy{}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestResumeLeavesLiveOrdersAndBacksOff: the resumer leaves alone an
// order updated within the saga timeout (a request may still be driving
// it), and resumes one that keeps stalling (inventory is down, so its
// stock cannot be released) ever less often, by a backoff stored with the
// order, and never while the drive its last claim started may still run.
func TestResumeLeavesLiveOrdersAndBacksOff(t *testing.T) {
	w := newWorld(t)
	o := newSaga(t, w, filepath.Join(t.TempDir(), "order.db"), servicetest.FreeAddr(t))
	clock := time.Now()
	saga.SetClock(o.saga, func() time.Time { return clock })
	ord := w.newOrder(t, "tok-4242", 1)
	ord.Begin(domain.StepReserve)
	ord.Fail("cancelled")
	if err := o.store.Create(context.Background(), ord); err != nil {
		t.Fatal(err)
	}
	policy := saga.ResumePolicy{Idle: 15 * time.Second, Backoff: 10 * time.Second}
	steps := []struct {
		advance time.Duration
		resumes int // stored after this resume
	}{
		{0, 0},                // just updated: a request may be driving it
		{2 * time.Minute, 1},  // idle: resumed, and it stalls
		{0, 1},                // within the first backoff (10 s)
		{11 * time.Second, 1}, // after it, but a drive may last 15 s (Idle)
		{5 * time.Second, 2},  // after that
		{11 * time.Second, 2}, // within the second backoff (20 s)
		{10 * time.Second, 3}, // after it
	}
	for i, st := range steps {
		clock = clock.Add(st.advance)
		if _, err := o.saga.Resume(context.Background(), policy); err != nil {
			t.Fatal(err)
		}
		got, err := o.store.Get(context.Background(), ord.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.ResumeAttempts != st.resumes || got.Status != domain.Compensating {
			t.Fatalf("step %d (+%v): %s with %d resumes, want compensating with %d", i, st.advance, got.Status, got.ResumeAttempts, st.resumes)
		}
	}
}
