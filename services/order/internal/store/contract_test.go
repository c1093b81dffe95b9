package store

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/services/kit/storage/storetest"
	"github.com/msctl/msctl/services/order/internal/domain"
)

// backends opens the Store on a fresh SQLite file and a fresh PostgreSQL
// database; the latter fails (never skips) when the server is unreachable.
var backends = storetest.Backends(Open)

// TestContract runs every behaviour the saga relies on against both
// stores.
func TestContract(t *testing.T) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s Store)
	}{
		{"create, get and update round-trip every field", testRoundTrip},
		{"updates are compare-and-swap on the version", testCAS},
		{"concurrent updates of one version: exactly one wins", testConcurrentCAS},
		{"list pages in id order; unfinished lists only open sagas", testListUnfinished},
		{"an idempotency key places one order per user", testIdempotencyKey},
		{"resumable: idle for long enough, backoff ended, claimed once", testResumable},
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
)

func newOrder(t *testing.T, s Store) domain.Order {
	t.Helper()
	o, err := domain.NewOrder("user-1", []domain.Item{{ProductID: "p1", Quantity: 2}, {ProductID: "p2", Quantity: 1}}, "tok-4242", "one_page", now)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, o); err != nil {
		t.Fatal(err)
	}
	return o
}

func testRoundTrip(t *testing.T, s Store) {
	o := newOrder(t, s)
	got, err := s.Get(ctx, o.ID)
	if err != nil || !reflect.DeepEqual(got, o) {
		t.Fatalf("Get = %+v, %v\nwant %+v", got, err, o)
	}
	if err := o.Price(map[string]int64{"p1": 250, "p2": 1000}); err != nil {
		t.Fatal(err)
	}
	o.Begin(domain.StepReserve)
	o.Begin(domain.StepCharge)
	o.Fail("payment declined: insufficient funds")
	later := now.Add(time.Minute)
	updated, err := s.Update(ctx, o, later)
	if err != nil || updated.Version != 2 || !updated.UpdatedAt.Equal(later) {
		t.Fatalf("Update = %+v, %v", updated, err)
	}
	got, err = s.Get(ctx, o.ID)
	if err != nil || !reflect.DeepEqual(got, updated) || got.PaymentToken != "" {
		t.Fatalf("after update Get = %+v, %v\nwant %+v (payment token dropped)", got, err, updated)
	}
	var nf *domain.NotFoundError
	if _, err := s.Get(ctx, "no-such-order"); !errors.As(err, &nf) {
		t.Fatalf("Get of an unknown order: %v", err)
	}
	ghost := o
	ghost.ID = "no-such-order"
	if _, err := s.Update(ctx, ghost, later); !errors.As(err, &nf) {
		t.Fatalf("Update of an unknown order: %v", err)
	}
}

func testCAS(t *testing.T, s Store) {
	o := newOrder(t, s)
	o.Begin(domain.StepReserve)
	if _, err := s.Update(ctx, o, now); err != nil {
		t.Fatal(err)
	}
	stale := o // still version 1
	if err := stale.Cancel(); err != nil {
		t.Fatal(err)
	}
	var ce *domain.ConflictError
	if _, err := s.Update(ctx, stale, now); !errors.As(err, &ce) {
		t.Fatalf("stale update: %v, want ConflictError", err)
	}
	got, _ := s.Get(ctx, o.ID)
	if got.Status != domain.Pending || got.Step != domain.StepReserve || got.Version != 2 {
		t.Fatalf("stale update changed the order: %+v", got)
	}
}

func testConcurrentCAS(t *testing.T, s Store) {
	o := newOrder(t, s)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := o
			c.Begin(domain.StepReserve)
			_, errs[i] = s.Update(ctx, c, now)
		}()
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		var ce *domain.ConflictError
		switch {
		case err == nil:
			wins++
		case !errors.As(err, &ce):
			t.Errorf("unexpected error: %v", err)
		}
	}
	if got, _ := s.Get(ctx, o.ID); wins != 1 || got.Version != 2 {
		t.Fatalf("%d updates won, version %d; want 1 and 2", wins, got.Version)
	}
}

func testListUnfinished(t *testing.T, s Store) {
	var ids []string
	for i := range 5 {
		o := newOrder(t, s)
		ids = append(ids, o.ID)
		switch i {
		case 1:
			o.Confirm()
		case 2:
			o.Fail("x")
		case 3:
			o.Fail("x")
			if err := o.Compensated(); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Update(ctx, o, now); err != nil {
			t.Fatal(err)
		}
	}
	first, err := s.List(ctx, "", 3)
	if err != nil || len(first) != 3 || first[0].ID != ids[0] || first[2].ID != ids[2] {
		t.Fatalf("first page: %d orders, %v", len(first), err)
	}
	rest, err := s.List(ctx, first[2].ID, 3)
	if err != nil || len(rest) != 2 || rest[1].ID != ids[4] {
		t.Fatalf("second page: %d orders, %v", len(rest), err)
	}
	open, err := s.Unfinished(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range open {
		got = append(got, o.ID)
	}
	if want := []string{ids[0], ids[2], ids[4]}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Unfinished = %v, want %v (pending, compensating, pending)", got, want)
	}
	if after, _ := s.Unfinished(ctx, ids[2], 10); len(after) != 1 || after[0].ID != ids[4] {
		t.Fatalf("Unfinished after %s: %d orders", ids[2], len(after))
	}
}

func testIdempotencyKey(t *testing.T, s Store) {
	mk := func(user, key string) domain.Order {
		o, err := domain.NewOrder(user, []domain.Item{{ProductID: "p1", Quantity: 1}}, "tok", "", now)
		if err != nil {
			t.Fatal(err)
		}
		o.IdempotencyKey = key
		return o
	}
	first := mk("user-1", "k-1")
	if err := s.Create(ctx, first); err != nil {
		t.Fatal(err)
	}
	var dup *domain.DuplicateKeyError
	if err := s.Create(ctx, mk("user-1", "k-1")); !errors.As(err, &dup) || dup.Key != "k-1" {
		t.Fatalf("second order with the same key: %v", err)
	}
	// Keys are per user, and orders without a key never collide.
	for _, o := range []domain.Order{mk("user-2", "k-1"), mk("user-1", ""), mk("user-1", "")} {
		if err := s.Create(ctx, o); err != nil {
			t.Fatalf("create %s/%q: %v", o.UserID, o.IdempotencyKey, err)
		}
	}
	got, err := s.ByIdempotencyKey(ctx, "user-1", "k-1")
	if err != nil || got.ID != first.ID || got.IdempotencyKey != "k-1" {
		t.Fatalf("ByIdempotencyKey = %+v, %v; want order %s", got, err, first.ID)
	}
	var nf *domain.NotFoundError
	if _, err := s.ByIdempotencyKey(ctx, "user-3", "k-1"); !errors.As(err, &nf) {
		t.Fatalf("ByIdempotencyKey of another user: %v", err)
	}
}

// testResumable: the resumer leaves alone an order a request updated
// recently (it may still be driving it) and one whose backoff has not
// ended, and of two resumers that read the same order only one claims it.
func testResumable(t *testing.T, s Store) {
	idle, recent, backedOff := newOrder(t, s), newOrder(t, s), newOrder(t, s)
	var err error
	if idle, err = s.Update(ctx, idle, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err = s.Update(ctx, recent, now); err != nil {
		t.Fatal(err)
	}
	if backedOff, err = s.Update(ctx, backedOff, now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.Claim(ctx, backedOff, now.Add(time.Minute)); !ok || err != nil {
		t.Fatalf("Claim: %v, %v", ok, err)
	}
	ids := func(at time.Time) []string {
		t.Helper()
		got, err := s.Resumable(ctx, "", 10, at.Add(-30*time.Second), at)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range got {
			out = append(out, o.ID)
		}
		return out
	}
	if got, want := ids(now), []string{idle.ID}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Resumable now = %v, want only the idle order %v", got, want)
	}
	later := now.Add(2 * time.Minute)
	if got, want := ids(later), []string{idle.ID, recent.ID, backedOff.ID}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Resumable two minutes later = %v, want all three %v", got, want)
	}

	ok, err := s.Claim(ctx, idle, later)
	if !ok || err != nil {
		t.Fatalf("first Claim: %v, %v", ok, err)
	}
	if ok, err := s.Claim(ctx, idle, later); ok || err != nil {
		t.Fatalf("second Claim of the same read: %v, %v; want false", ok, err)
	}
	got, err := s.Get(ctx, idle.ID)
	if err != nil || got.ResumeAttempts != 1 || got.Version != idle.Version || !got.UpdatedAt.Equal(idle.UpdatedAt) {
		t.Fatalf("after Claim: %+v, %v; want one attempt, version and update time unchanged", got, err)
	}
}
