// Package saga runs an order's saga: validate the user and price the
// items, reserve stock, charge, then commit the reservation and confirm.
// A failure at any step compensates the completed steps in reverse
// (refund, release stock) and the order ends FAILED with its reason.
//
// Crash safety comes from two rules. The order's state, including the
// compensation a call may create, is stored BEFORE each remote call; and
// every remote call is idempotent by order id, so a saga resumed after a
// crash repeats its current step safely. Resume runs on start-up and
// periodically: a pending order goes forward, a compensating one finishes
// compensating. The package never decides idempotency itself and never
// keeps saga state only in memory.
package saga

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/order/internal/domain"
	"github.com/msctl/msctl/services/order/internal/store"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// Deps are the downstream clients, each over the kit's downstream
// connection (deadline, retries of idempotent methods, breaker).
type Deps struct {
	Users     userv1.UserServiceClient
	Inventory inventoryv1.InventoryServiceClient
	Payments  paymentv1.PaymentServiceClient
}

// FailedError is a saga that ended FAILED: compensated, nothing held.
// Unavailable says a dependency was down (or its breaker open) rather
// than the order being refused.
type FailedError struct {
	Order       domain.Order
	Unavailable bool
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("order %s failed: %s", e.Order.ID, e.Order.Reason)
}

// StalledError is a saga that could not finish now because a dependency
// it must call (to go forward from confirm, or to compensate) is
// unavailable. Its state is stored; the resumer finishes it later.
type StalledError struct {
	Order domain.Order
	Cause error
}

func (e *StalledError) Error() string {
	return fmt.Sprintf("order %s is %s at step %s and will be finished in the background: %v",
		e.Order.ID, e.Order.Status, e.Order.Step, e.Cause)
}

func (e *StalledError) Unwrap() error { return e.Cause }

// Saga runs order sagas over one store and one set of dependencies.
type Saga struct {
	// store is the open store: calls come through the API, which the
	// kit's chain holds off until the database is open, or from the
	// resumer, which starts only then.
	store    func() store.Store
	deps     Deps
	logger   *slog.Logger
	finished *prometheus.CounterVec
	now      func() time.Time

	// running holds the ids this process is driving, so the resumer does
	// not drive the same order twice at once. Across processes the
	// store's compare-and-swap and the idempotent calls keep it safe.
	mu      sync.Mutex
	running map[string]bool

	// crashAfter, for tests, simulates a crash right after a step's
	// remote call answered and before its outcome is stored.
	crashAfter func(domain.Step) bool
}

// errCrashed is what a simulated crash returns.
var errCrashed = errors.New("saga: simulated crash")

// New registers order_saga_finished_total{outcome} on reg (the service's
// registry: the alert rules in manifests use that name).
func New(s func() store.Store, deps Deps, reg prometheus.Registerer, logger *slog.Logger) (*Saga, error) {
	finished := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "order_saga_finished_total",
		Help: "Order sagas that reached a final state, by outcome (confirmed or failed).",
	}, []string{"outcome"})
	if err := reg.Register(finished); err != nil {
		return nil, err
	}
	finished.WithLabelValues("confirmed")
	finished.WithLabelValues("failed")
	return &Saga{store: s, deps: deps, logger: logger, finished: finished, now: time.Now, running: map[string]bool{}}, nil
}

// Create stores a new order (before any remote call) and runs its saga to
// the end. The returned order is the stored one; the error is nil when it
// is CONFIRMED, *FailedError when it ended FAILED, *StalledError when it
// must be finished in the background.
func (s *Saga) Create(ctx context.Context, o domain.Order) (domain.Order, error) {
	if err := s.store().Create(ctx, o); err != nil {
		return domain.Order{}, err
	}
	return s.Run(ctx, o.ID)
}

// Run drives one order's saga until it is final or cannot progress now.
// An order another goroutine of this process is driving is returned as
// stored, with a StalledError.
func (s *Saga) Run(ctx context.Context, id string) (domain.Order, error) {
	s.mu.Lock()
	if s.running[id] {
		s.mu.Unlock()
		o, err := s.store().Get(ctx, id)
		if err != nil {
			return domain.Order{}, err
		}
		return o, &StalledError{Order: o, Cause: errors.New("already running")}
	}
	s.running[id] = true
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.running, id)
		s.mu.Unlock()
	}()

	unavailable := false
	for {
		o, err := s.store().Get(ctx, id)
		if err != nil {
			return domain.Order{}, err
		}
		switch o.Status {
		case domain.Confirmed:
			return o, nil
		case domain.Failed:
			return o, &FailedError{Order: o, Unavailable: unavailable}
		case domain.Compensating:
			err = s.compensate(ctx, o)
		default:
			var down bool
			down, err = s.forward(ctx, o)
			unavailable = unavailable || down
		}
		var conflict *domain.ConflictError
		switch {
		case err == nil, errors.As(err, &conflict):
			// Stored a new state, or someone else (a cancel) did: read it
			// back and carry on from there.
		case errors.Is(err, errCrashed):
			return domain.Order{}, err
		default:
			cur, gerr := s.store().Get(ctx, id)
			if gerr != nil {
				return domain.Order{}, errors.Join(err, gerr)
			}
			return cur, &StalledError{Order: cur, Cause: err}
		}
	}
}

// save stores o by compare-and-swap.
func (s *Saga) save(ctx context.Context, o domain.Order) error {
	_, err := s.store().Update(ctx, o, s.now())
	return err
}

// saveNext stores o and returns it at its new version, for a step that
// stores more than once.
func (s *Saga) saveNext(ctx context.Context, o domain.Order) (domain.Order, error) {
	return s.store().Update(ctx, o, s.now())
}

// crashed reports whether a test asked to crash after step's call.
func (s *Saga) crashed(step domain.Step) bool { return s.crashAfter != nil && s.crashAfter(step) }

// transient reports whether err says a dependency is down or slow rather
// than refusing the request.
func transient(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Canceled, codes.Aborted, codes.Internal, codes.Unknown:
		return true
	}
	return false
}

// reason is a failure reason naming the dependency and its answer.
func reason(dep string, err error) string {
	st := status.Convert(err)
	if transient(err) {
		return fmt.Sprintf("%s unavailable: %s", dep, st.Message())
	}
	return fmt.Sprintf("%s: %s", dep, st.Message())
}

// fail starts compensation with why; the stored state then drives it.
func (s *Saga) fail(ctx context.Context, o domain.Order, why string) error {
	s.logger.InfoContext(ctx, "order saga failed, compensating", "order_id", o.ID, "step", o.Step, "reason", why)
	o.Fail(why)
	return s.save(ctx, o)
}

// forward runs o's current step and stores the next state before the
// next remote call. down says a dependency was unavailable.
func (s *Saga) forward(ctx context.Context, o domain.Order) (down bool, err error) {
	switch o.Step {
	case domain.StepValidate:
		u, err := s.deps.Users.GetUser(ctx, &userv1.GetUserRequest{Id: o.UserID})
		if err != nil {
			return transient(err), s.fail(ctx, o, reason("user", err))
		}
		if u.GetStatus() != userv1.Status_STATUS_ACTIVE {
			return false, s.fail(ctx, o, fmt.Sprintf("user %s is not active", o.UserID))
		}
		ids := make([]string, len(o.Items))
		for i, it := range o.Items {
			ids[i] = it.ProductID
		}
		// One call prices the whole cart.
		ps, err := s.deps.Inventory.BatchGetProducts(ctx, &inventoryv1.BatchGetProductsRequest{Ids: ids})
		if err != nil {
			return transient(err), s.fail(ctx, o, reason("inventory", err))
		}
		prices := make(map[string]int64, len(ps.GetProducts()))
		for _, p := range ps.GetProducts() {
			prices[p.GetId()] = p.GetPriceCents()
		}
		if err := o.Price(prices); err != nil {
			return false, s.fail(ctx, o, err.Error())
		}
		if o.AmountCents <= 0 {
			return false, s.fail(ctx, o, "the order's total is zero")
		}
		o.Begin(domain.StepReserve)
		return false, s.save(ctx, o)

	case domain.StepReserve:
		items := make([]*inventoryv1.Item, 0, len(o.Items))
		for _, it := range o.Items {
			items = append(items, &inventoryv1.Item{ProductId: it.ProductID, Quantity: it.Quantity})
		}
		r, err := s.deps.Inventory.ReserveStock(ctx, &inventoryv1.ReserveStockRequest{OrderId: o.ID, Items: items})
		if s.crashed(domain.StepReserve) {
			return false, errCrashed
		}
		if err != nil {
			// Even a call this process's breaker refused may have landed,
			// sent by an earlier run of this step here or elsewhere: what
			// is owed stays owed, and the compensation finds out.
			return transient(err), s.fail(ctx, o, reason("inventory", err))
		}
		// A repeated reserve returns the reservation in whatever state it
		// is; only a held one lets the saga go on.
		if st := r.GetState(); st != inventoryv1.ReservationState_RESERVATION_STATE_PENDING {
			return false, s.fail(ctx, o, "stock reservation is "+strings.ToLower(strings.TrimPrefix(st.String(), "RESERVATION_STATE_")))
		}
		o.Begin(domain.StepCharge)
		return false, s.save(ctx, o)

	case domain.StepCharge:
		p, err := s.deps.Payments.Charge(ctx, &paymentv1.ChargeRequest{OrderId: o.ID, Amount: o.AmountCents,
			Currency: o.Currency, IdempotencyKey: o.ID, PaymentMethodToken: o.PaymentToken})
		if s.crashed(domain.StepCharge) {
			return false, errCrashed
		}
		if err != nil {
			// Even a call this process's breaker refused may have landed,
			// sent by an earlier run of this step here or elsewhere: what
			// is owed stays owed, and the compensation finds out.
			return transient(err), s.fail(ctx, o, reason("payment", err))
		}
		switch p.GetStatus() {
		case paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED:
		case paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED:
			return false, s.fail(ctx, o, "payment declined: "+p.GetDeclineReason())
		default:
			return false, s.fail(ctx, o, "payment is "+p.GetStatus().String())
		}
		o.Begin(domain.StepConfirm)
		return false, s.save(ctx, o)

	case domain.StepConfirm:
		_, err := s.deps.Inventory.CommitReservation(ctx, &inventoryv1.CommitReservationRequest{OrderId: o.ID})
		if s.crashed(domain.StepConfirm) {
			return false, errCrashed
		}
		switch {
		case err == nil:
		case status.Code(err) == codes.FailedPrecondition, status.Code(err) == codes.NotFound:
			// The reservation expired or was released: the stock is gone,
			// so the only way out is back (refund; release is a no-op).
			return false, s.fail(ctx, o, reason("inventory", err))
		default:
			// Paid and reserved: go forward later rather than undo a
			// commit that may have landed.
			return true, fmt.Errorf("committing the reservation: %w", err)
		}
		o.Confirm()
		if err := s.save(ctx, o); err != nil {
			return false, err
		}
		s.finished.WithLabelValues("confirmed").Inc()
		s.logger.InfoContext(ctx, "order confirmed", "order_id", o.ID, "amount_cents", o.AmountCents)
		return false, nil
	}
	return false, fmt.Errorf("order %s: unknown step %q", o.ID, o.Step)
}

// compensate undoes what o owes, storing each acknowledged compensation,
// and ends the order FAILED once nothing is owed. Both compensations are
// idempotent and void what they find nothing of (a late charge or
// reservation is then refused), so each is always sent, never skipped;
// one that cannot be sent now (its dependency down, or its breaker open)
// leaves the order COMPENSATING for the resumer, without holding back
// the other: payment being down must not keep stock reserved.
func (s *Saga) compensate(ctx context.Context, o domain.Order) error {
	owed := []struct {
		flag *bool
		what string
		call func() error
	}{
		{&o.OwesRefund, "refund", func() error {
			_, err := s.deps.Payments.Refund(ctx, &paymentv1.RefundRequest{OrderId: o.ID})
			return err
		}},
		{&o.OwesRelease, "release stock", func() error {
			// A released or expired reservation answers OK unchanged.
			_, err := s.deps.Inventory.ReleaseStock(ctx, &inventoryv1.ReleaseStockRequest{OrderId: o.ID})
			return err
		}},
	}
	var pending []error
	for _, c := range owed {
		if !*c.flag {
			continue
		}
		// NotFound: never charged or reserved, so nothing to give back.
		if err := c.call(); err != nil && status.Code(err) != codes.NotFound {
			pending = append(pending, fmt.Errorf("%s: %w", c.what, err))
			continue
		}
		*c.flag = false
		next, err := s.saveNext(ctx, o)
		if err != nil {
			return err
		}
		o = next
	}
	if len(pending) > 0 {
		return errors.Join(pending...)
	}
	if err := o.Compensated(); err != nil {
		return err
	}
	if err := s.save(ctx, o); err != nil {
		return err
	}
	s.finished.WithLabelValues("failed").Inc()
	s.logger.InfoContext(ctx, "order failed and compensated", "order_id", o.ID, "reason", o.Reason)
	return nil
}

// ResumePolicy says which unfinished sagas a resume may drive, so that
// every replica's resumer can run without fighting live requests or each
// other.
type ResumePolicy struct {
	// Idle leaves alone orders updated more recently: a request (here or
	// on another replica) drives its saga for at most the saga timeout,
	// so an order untouched for longer has no one driving it. It also
	// bounds each resumed drive.
	Idle time.Duration
	// Backoff is the wait after an order's first resume; it doubles with
	// each resume of the same order, up to 64 times Backoff. It is stored
	// with the order, so replicas and restarts share it.
	Backoff time.Duration
}

// next is when an order resumed for the attempts-th time before may be
// resumed again: never before the drive that this claim starts has ended
// (it is bounded by Idle), or a drive that saves nothing for a while could
// be claimed by a second resumer while it still runs.
func (p ResumePolicy) next(now time.Time, attempts int) time.Time {
	return now.Add(max(p.Backoff<<min(attempts, 6), p.Idle))
}

// Resume drives, once, every unfinished saga that p allows, oldest first,
// and returns how many it finished and the first error other than a
// saga's own outcome. Each order is claimed before it is driven, so two
// resumers never drive it together.
func (s *Saga) Resume(ctx context.Context, p ResumePolicy) (finished int, err error) {
	after := ""
	for {
		now := s.now()
		batch, err := s.store().Resumable(ctx, after, 100, now.Add(-p.Idle), now)
		if err != nil {
			return finished, err
		}
		if len(batch) == 0 {
			return finished, nil
		}
		for _, o := range batch {
			after = o.ID
			claimed, err := s.store().Claim(ctx, o, p.next(now, o.ResumeAttempts))
			if err != nil {
				return finished, err
			}
			if !claimed {
				continue
			}
			got, err := s.resumeOne(ctx, o.ID, p.Idle)
			var fe *FailedError
			var se *StalledError
			switch {
			case err == nil, errors.As(err, &fe):
				finished++
			case errors.As(err, &se):
				s.logger.WarnContext(ctx, "order saga stalled, will retry", "order_id", o.ID, "status", got.Status,
					"resumes", o.ResumeAttempts+1, "error", se.Cause)
			default:
				return finished, err
			}
			if ctx.Err() != nil {
				return finished, ctx.Err()
			}
		}
	}
}

// resumeOne runs one claimed saga, for at most limit when it is set.
func (s *Saga) resumeOne(ctx context.Context, id string, limit time.Duration) (domain.Order, error) {
	if limit > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, limit)
		defer cancel()
	}
	return s.Run(ctx, id)
}

// ResumeEvery runs Resume now and then every interval until ctx ends.
func (s *Saga) ResumeEvery(ctx context.Context, interval time.Duration, p ResumePolicy) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if n, err := s.Resume(ctx, p); err != nil && ctx.Err() == nil {
			s.logger.ErrorContext(ctx, "resuming order sagas", "error", err)
		} else if n > 0 {
			s.logger.InfoContext(ctx, "resumed order sagas", "finished", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
