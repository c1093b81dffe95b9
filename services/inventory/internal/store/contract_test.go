package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/services/inventory/internal/domain"
	"github.com/msctl/msctl/services/kit/storage/storetest"
)

// backends opens the Store on a fresh SQLite file and a fresh PostgreSQL
// database; the latter fails (never skips) when the server is unreachable.
var backends = storetest.Backends(Open)

// TestContract runs every behaviour the service relies on against both
// stores.
func TestContract(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"products round-trip and page in id order", testProducts},
		{"adjust stock never goes negative", testAdjust},
		{"reserve, commit, release", testReserveCommitRelease},
		{"reserve is idempotent by order id", testReserveIdempotent},
		{"bad reservations change nothing", testReserveRejects},
		{"expiry at read time and by the sweeper", testExpiry},
		{"concurrent reservations never oversell", testNoOversell},
		{"concurrent retries of one order reserve once", testConcurrentSameOrder},
		{"a release before any reservation refuses it", testReleaseBeforeReserve},
		{"a release racing a reservation never holds stock", testReleaseRacesReserve},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
			}
		})
	}
}

var (
	ctx = context.Background()
	now = time.Date(2030, 1, 2, 3, 4, 5, 678901000, time.UTC)
	ttl = 15 * time.Minute
)

func product(t *testing.T, s Store, sku string, stock int64) domain.Product {
	t.Helper()
	p, err := domain.NewProduct(sku, "Product "+sku, 199, stock, now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateProduct(ctx, p); err != nil {
		t.Fatal(err)
	}
	return p
}

func item(id string, q int64) domain.Item { return domain.Item{ProductID: id, Quantity: q} }

// stock asserts a product's available and reserved units.
func stock(t *testing.T, s Store, id string, available, reserved int64) {
	t.Helper()
	p, err := s.GetProduct(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if p.Available != available || p.Reserved != reserved {
		t.Fatalf("product %s: available %d reserved %d, want %d and %d", p.SKU, p.Available, p.Reserved, available, reserved)
	}
}

func testProducts(t *testing.T, s Store) {
	var made []domain.Product
	for i := range 5 {
		made = append(made, product(t, s, fmt.Sprintf("SKU-%d", i), int64(i)))
	}
	got, err := s.GetProduct(ctx, made[2].ID)
	if err != nil || got != made[2] {
		t.Fatalf("GetProduct = %+v, %v; want %+v", got, err, made[2])
	}
	dup, _ := domain.NewProduct("SKU-1", "Again", 1, 1, now)
	if err := s.CreateProduct(ctx, dup); !errors.Is(err, domain.ErrSKUTaken) {
		t.Fatalf("duplicate sku: %v", err)
	}
	var nf *domain.NotFoundError
	if _, err := s.GetProduct(ctx, "0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d"); !errors.As(err, &nf) {
		t.Fatalf("unknown product: %v", err)
	}
	// GetProducts skips unknown ids; the caller decides what a miss means.
	many, err := s.GetProducts(ctx, []string{made[4].ID, "0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d", made[0].ID})
	slices.SortFunc(many, func(a, b domain.Product) int { return strings.Compare(a.ID, b.ID) })
	if err != nil || len(many) != 2 || many[0] != made[0] || many[1] != made[4] {
		t.Fatalf("GetProducts = %+v, %v; want products 0 and 4", many, err)
	}
	var ids []string
	after := ""
	for {
		page, err := s.ListProducts(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, p := range page {
			ids = append(ids, p.ID)
		}
		after = page[len(page)-1].ID
	}
	var want []string
	for _, p := range made {
		want = append(want, p.ID)
	}
	if !slices.Equal(ids, want) {
		t.Fatalf("pages listed %v, want %v", ids, want)
	}
}

func testAdjust(t *testing.T, s Store) {
	p := product(t, s, "A", 5)
	got, err := s.AdjustStock(ctx, p.ID, 3, now.Add(time.Second))
	if err != nil || got.Available != 8 || got.Version != 2 || !got.UpdatedAt.Equal(now.Add(time.Second)) {
		t.Fatalf("AdjustStock +3 = %+v, %v", got, err)
	}
	var ise *domain.InsufficientStockError
	if _, err := s.AdjustStock(ctx, p.ID, -9, now); !errors.As(err, &ise) || ise.Available != 8 || ise.ProductID != p.ID {
		t.Fatalf("AdjustStock -9: %v", err)
	}
	var nf *domain.NotFoundError
	if _, err := s.AdjustStock(ctx, "0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d", 1, now); !errors.As(err, &nf) {
		t.Fatalf("AdjustStock unknown: %v", err)
	}
	// Stock is bounded, so no sum of stock and reservations overflows.
	var tm *domain.TooMuchStockError
	if _, err := s.AdjustStock(ctx, p.ID, domain.MaxUnits, now); !errors.As(err, &tm) || tm.Available != 8 {
		t.Fatalf("AdjustStock past the maximum: %v", err)
	}
	var ve *domain.ValidationError
	if _, err := s.AdjustStock(ctx, p.ID, domain.MaxUnits+1, now); !errors.As(err, &ve) || ve.Field != "delta" {
		t.Fatalf("AdjustStock beyond the bound: %v", err)
	}
	if _, err := s.AdjustStock(ctx, p.ID, -8, now); err != nil {
		t.Fatal(err)
	}
	stock(t, s, p.ID, 0, 0)
}

func testReserveCommitRelease(t *testing.T, s Store) {
	a, b := product(t, s, "A", 10), product(t, s, "B", 5)
	r, err := s.Reserve(ctx, "order-1", []domain.Item{item(b.ID, 2), item(a.ID, 3), item(b.ID, 1)}, now, now.Add(ttl))
	if err != nil {
		t.Fatal(err)
	}
	want, _ := domain.NormalizeItems([]domain.Item{item(a.ID, 3), item(b.ID, 3)})
	if r.State != domain.Pending || !slices.Equal(r.Items, want) || !r.ExpiresAt.Equal(now.Add(ttl)) {
		t.Fatalf("Reserve = %+v", r)
	}
	stock(t, s, a.ID, 7, 3)
	stock(t, s, b.ID, 2, 3)
	if got, err := s.Reservation(ctx, "order-1"); err != nil || got.State != domain.Pending || !slices.Equal(got.Items, want) {
		t.Fatalf("Reservation = %+v, %v", got, err)
	}

	// Commit sells the units; repeating it changes nothing.
	for range 2 {
		r, err = s.Commit(ctx, "order-1", now.Add(time.Minute))
		if err != nil || r.State != domain.Committed {
			t.Fatalf("Commit = %+v, %v", r, err)
		}
		stock(t, s, a.ID, 7, 0)
		stock(t, s, b.ID, 2, 0)
	}
	// Committed never expires and cannot be released.
	if n, err := s.ExpireDue(ctx, now.Add(24*time.Hour), 10); err != nil || n != 0 {
		t.Fatalf("ExpireDue after commit = %d, %v", n, err)
	}
	var se *domain.StateError
	if _, err := s.Release(ctx, "order-1", now.Add(24*time.Hour)); !errors.As(err, &se) || se.State != domain.Committed {
		t.Fatalf("Release after commit: %v", err)
	}
	stock(t, s, a.ID, 7, 0)

	// Release returns units; repeating it changes nothing; commit is refused.
	if _, err := s.Reserve(ctx, "order-2", []domain.Item{item(a.ID, 4)}, now, now.Add(ttl)); err != nil {
		t.Fatal(err)
	}
	stock(t, s, a.ID, 3, 4)
	for range 2 {
		r, err = s.Release(ctx, "order-2", now)
		if err != nil || r.State != domain.Released {
			t.Fatalf("Release = %+v, %v", r, err)
		}
		stock(t, s, a.ID, 7, 0)
	}
	if _, err := s.Commit(ctx, "order-2", now); !errors.As(err, &se) || se.State != domain.Released {
		t.Fatalf("Commit after release: %v", err)
	}
	var nf *domain.NotFoundError
	for name, op := range map[string]func(context.Context, string, time.Time) (domain.Reservation, error){
		"release": s.Release, "commit": s.Commit,
	} {
		if _, err := op(ctx, "no-such-order", now); !errors.As(err, &nf) || nf.Kind != "reservation" {
			t.Errorf("%s of an unknown order: %v", name, err)
		}
	}
}

func testReserveIdempotent(t *testing.T, s Store) {
	a, b := product(t, s, "A", 10), product(t, s, "B", 10)
	first, err := s.Reserve(ctx, "order-1", []domain.Item{item(a.ID, 2), item(b.ID, 1)}, now, now.Add(ttl))
	if err != nil {
		t.Fatal(err)
	}
	// Same items in another order and split differently, later: the same
	// reservation, nothing more held, expiry not pushed back.
	again, err := s.Reserve(ctx, "order-1", []domain.Item{item(b.ID, 1), item(a.ID, 1), item(a.ID, 1)}, now.Add(time.Minute), now.Add(time.Minute+ttl))
	if err != nil {
		t.Fatal(err)
	}
	if again.State != first.State || !slices.Equal(again.Items, first.Items) || !again.ExpiresAt.Equal(first.ExpiresAt) ||
		!again.CreatedAt.Equal(first.CreatedAt) {
		t.Fatalf("repeat = %+v, want %+v", again, first)
	}
	stock(t, s, a.ID, 8, 2)
	var mm *domain.ItemsMismatchError
	if _, err := s.Reserve(ctx, "order-1", []domain.Item{item(a.ID, 3), item(b.ID, 1)}, now, now.Add(ttl)); !errors.As(err, &mm) {
		t.Fatalf("reserve with other items: %v", err)
	}
	stock(t, s, a.ID, 8, 2)
	stock(t, s, b.ID, 9, 1)
	// After release, a repeat returns the released reservation and holds
	// nothing again: the saga's retried step must not resurrect it.
	if _, err := s.Release(ctx, "order-1", now); err != nil {
		t.Fatal(err)
	}
	r, err := s.Reserve(ctx, "order-1", []domain.Item{item(a.ID, 2), item(b.ID, 1)}, now, now.Add(ttl))
	if err != nil || r.State != domain.Released {
		t.Fatalf("reserve after release = %+v, %v", r, err)
	}
	stock(t, s, a.ID, 10, 0)
}

func testReserveRejects(t *testing.T, s Store) {
	a, b := product(t, s, "A", 5), product(t, s, "B", 1)
	var ise *domain.InsufficientStockError
	_, err := s.Reserve(ctx, "order-1", []domain.Item{item(a.ID, 5), item(b.ID, 2)}, now, now.Add(ttl))
	if !errors.As(err, &ise) || ise.ProductID != b.ID || ise.Requested != 2 || ise.Available != 1 {
		t.Fatalf("insufficient: %v", err)
	}
	var nf *domain.NotFoundError
	unknown := "0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d"
	if _, err := s.Reserve(ctx, "order-1", []domain.Item{item(a.ID, 1), item(unknown, 1)}, now, now.Add(ttl)); !errors.As(err, &nf) || nf.ID != unknown {
		t.Fatalf("unknown product: %v", err)
	}
	var ve *domain.ValidationError
	if _, err := s.Reserve(ctx, "order-1", []domain.Item{item(a.ID, 0)}, now, now.Add(ttl)); !errors.As(err, &ve) {
		t.Fatalf("zero quantity: %v", err)
	}
	// All or nothing: A was taken before B failed, and is back.
	stock(t, s, a.ID, 5, 0)
	stock(t, s, b.ID, 1, 0)
	if _, err := s.Reservation(ctx, "order-1"); !errors.As(err, &nf) {
		t.Fatalf("a failed reservation was stored: %v", err)
	}
	// The order id is still free to use.
	if _, err := s.Reserve(ctx, "order-1", []domain.Item{item(b.ID, 1)}, now, now.Add(ttl)); err != nil {
		t.Fatal(err)
	}
}

func testExpiry(t *testing.T, s Store) {
	a := product(t, s, "A", 10)
	for i := range 3 {
		if _, err := s.Reserve(ctx, fmt.Sprint("order-", i), []domain.Item{item(a.ID, 2)}, now, now.Add(time.Duration(i+1)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	stock(t, s, a.ID, 4, 6)
	// The sweeper releases what is due, at or before now, and no more.
	if n, err := s.ExpireDue(ctx, now.Add(2*time.Minute), 10); err != nil || n != 2 {
		t.Fatalf("ExpireDue = %d, %v; want 2", n, err)
	}
	stock(t, s, a.ID, 8, 2)
	if n, err := s.ExpireDue(ctx, now.Add(2*time.Minute), 10); err != nil || n != 0 {
		t.Fatalf("second ExpireDue = %d, %v; want 0", n, err)
	}
	r, err := s.Reservation(ctx, "order-0")
	if err != nil || r.State != domain.Expired {
		t.Fatalf("swept reservation = %+v, %v", r, err)
	}
	// Releasing an expired reservation is a no-op; committing is refused.
	if r, err := s.Release(ctx, "order-0", now.Add(time.Hour)); err != nil || r.State != domain.Expired {
		t.Fatalf("release expired = %+v, %v", r, err)
	}
	// order-2 is due at +3m but not swept: a commit after that expires it
	// first and is refused, and the units come back.
	var se *domain.StateError
	if _, err := s.Commit(ctx, "order-2", now.Add(3*time.Minute)); !errors.As(err, &se) || se.State != domain.Expired {
		t.Fatalf("commit after expiry: %v", err)
	}
	stock(t, s, a.ID, 10, 0)
	if r, err := s.Reservation(ctx, "order-2"); err != nil || r.State != domain.Expired {
		t.Fatalf("lazily expired reservation = %+v, %v", r, err)
	}
}

func testNoOversell(t *testing.T, s Store) {
	const stockUnits, buyers = 10, 40
	a, b := product(t, s, "A", stockUnits), product(t, s, "B", 1000)
	var wg sync.WaitGroup
	errs := make([]error, buyers)
	for i := range buyers {
		wg.Go(func() {
			// Half list the products the other way round, to provoke
			// deadlocks if locking order depended on the request.
			items := []domain.Item{item(a.ID, 1), item(b.ID, 1)}
			if i%2 == 1 {
				items = []domain.Item{item(b.ID, 1), item(a.ID, 1)}
			}
			_, errs[i] = s.Reserve(ctx, fmt.Sprint("order-", i), items, now, now.Add(ttl))
		})
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		var ise *domain.InsufficientStockError
		switch {
		case err == nil:
			ok++
		case errors.As(err, &ise) && ise.ProductID == a.ID:
		default:
			t.Errorf("buyer %d: %v", i, err)
		}
	}
	if ok != stockUnits {
		t.Fatalf("%d reservations succeeded for %d units", ok, stockUnits)
	}
	stock(t, s, a.ID, 0, stockUnits)
	stock(t, s, b.ID, 1000-stockUnits, stockUnits)
}

func testConcurrentSameOrder(t *testing.T, s Store) {
	a := product(t, s, "A", 100)
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() { _, errs[i] = s.Reserve(ctx, "order-1", []domain.Item{item(a.ID, 3)}, now, now.Add(ttl)) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("attempt %d: %v", i, err)
		}
	}
	stock(t, s, a.ID, 97, 3)
}

func testReleaseBeforeReserve(t *testing.T, s Store) {
	a := product(t, s, "A", 10)
	// The saga compensates a reservation whose outcome it did not know
	// before it landed: Release still answers NotFound, every time...
	var nf *domain.NotFoundError
	for range 2 {
		if _, err := s.Release(ctx, "order-1", now); !errors.As(err, &nf) {
			t.Fatalf("release of an unreserved order: %v", err)
		}
	}
	// ...and the reservation landing afterwards is refused and holds
	// nothing.
	var ce *domain.CancelledError
	if r, err := s.Reserve(ctx, "order-1", []domain.Item{item(a.ID, 3)}, now, now.Add(ttl)); !errors.As(err, &ce) || ce.OrderID != "order-1" {
		t.Fatalf("reserve after release = %+v, %v", r, err)
	}
	stock(t, s, a.ID, 10, 0)
	if _, err := s.Reservation(ctx, "order-1"); !errors.As(err, &nf) {
		t.Fatalf("reservation of a released order: %v", err)
	}
	// Commit of an unknown order marks nothing.
	if _, err := s.Commit(ctx, "order-2", now); !errors.As(err, &nf) {
		t.Fatalf("commit of an unknown order: %v", err)
	}
	if _, err := s.Reserve(ctx, "order-2", []domain.Item{item(a.ID, 1)}, now, now.Add(ttl)); err != nil {
		t.Fatal(err)
	}
	stock(t, s, a.ID, 9, 1)
}

func testReleaseRacesReserve(t *testing.T, s Store) {
	a := product(t, s, "A", 1000)
	for i := range 20 {
		order := fmt.Sprintf("order-%d", i)
		var wg sync.WaitGroup
		var reserveErr, releaseErr error
		wg.Go(func() { _, reserveErr = s.Reserve(ctx, order, []domain.Item{item(a.ID, 1)}, now, now.Add(ttl)) })
		wg.Go(func() { _, releaseErr = s.Release(ctx, order, now) })
		wg.Wait()
		var ce *domain.CancelledError
		var nf *domain.NotFoundError
		switch {
		case reserveErr == nil && releaseErr == nil: // reserved, then released
		case errors.As(reserveErr, &ce) && errors.As(releaseErr, &nf): // marked, then refused
		default:
			t.Fatalf("%s: reserve %v, release %v", order, reserveErr, releaseErr)
		}
		if _, err := s.Release(ctx, order, now); err != nil && !errors.As(err, &nf) {
			t.Fatal(err)
		}
		stock(t, s, a.ID, 1000, 0)
	}
}
