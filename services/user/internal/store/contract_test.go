package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/services/kit/storage/storetest"
	"github.com/msctl/msctl/services/user/internal/domain"
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
		{"create and get round-trip", testCreateGet},
		{"duplicate email", testDuplicateEmail},
		{"update with expected version", testUpdate},
		{"delete", testDelete},
		{"list pages in id order", testList},
		{"events in commit order with snapshots", testEvents},
		{"concurrent writers never lose events", testConcurrentEvents},
	}
	for name, open := range backends {
		t.Run(name, func(t *testing.T) {
			for _, tc := range tests {
				t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
			}
		})
	}
}

var now = time.Date(2030, 1, 2, 3, 4, 5, 678901234, time.UTC)

func newUser(t *testing.T, email string) domain.User {
	t.Helper()
	u, err := domain.NewUser(email, "Test User", domain.DefaultPreferences(), now)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func testCreateGet(t *testing.T, s Store) {
	ctx := context.Background()
	u := newUser(t, "a@example.com")
	u.Preferences = domain.Preferences{EmailNotifications: false, Timezone: "Asia/Kolkata", Language: "de-CH"}
	if err := s.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got != u {
		t.Fatalf("round-trip changed the user:\n got %+v\nwant %+v", got, u)
	}
	if _, err := s.Get(ctx, "01900000-0000-7000-8000-000000000000"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing user: %v, want ErrNotFound", err)
	}
}

func testDuplicateEmail(t *testing.T, s Store) {
	ctx := context.Background()
	if err := s.Create(ctx, newUser(t, "dup@example.com")); err != nil {
		t.Fatal(err)
	}
	if err := s.Create(ctx, newUser(t, "dup@example.com")); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("second create: %v, want ErrEmailTaken", err)
	}
	other := newUser(t, "other@example.com")
	if err := s.Create(ctx, other); err != nil {
		t.Fatal(err)
	}
	other.Email, other.Version = "dup@example.com", 2
	if err := s.Update(ctx, other, 1); !errors.Is(err, ErrEmailTaken) {
		t.Fatalf("update to a taken email: %v, want ErrEmailTaken", err)
	}
	if n := eventCount(t, s); n != 2 {
		t.Fatalf("%d events after two creates and failed writes, want 2", n)
	}
}

func testUpdate(t *testing.T, s Store) {
	ctx := context.Background()
	u := newUser(t, "u@example.com")
	if err := s.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	name := "Renamed"
	next, err := u.Apply(domain.Patch{FullName: &name}, now.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(ctx, next, 1); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Get(ctx, u.ID); got != next {
		t.Fatalf("after update got %+v, want %+v", got, next)
	}
	// The same write again is stale: version 1 is gone.
	if err := s.Update(ctx, next, 1); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("stale update: %v, want ErrVersionConflict", err)
	}
	ghost := newUser(t, "ghost@example.com")
	if err := s.Update(ctx, ghost, 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing user: %v, want ErrNotFound", err)
	}
}

func testDelete(t *testing.T, s Store) {
	ctx := context.Background()
	u := newUser(t, "d@example.com")
	if err := s.Create(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Delete(ctx, u.ID, 7); !errors.Is(err, ErrVersionConflict) {
		t.Fatalf("delete at a wrong version: %v, want ErrVersionConflict", err)
	}
	old, err := s.Delete(ctx, u.ID, 1)
	if err != nil || old != u {
		t.Fatalf("delete: %+v, %v", old, err)
	}
	if _, err := s.Delete(ctx, u.ID, 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v, want ErrNotFound", err)
	}
	evs, err := s.Events(ctx, EventQuery{})
	if err != nil || len(evs) != 2 || evs[1].Kind != domain.Deleted || evs[1].User != u {
		t.Fatalf("events after delete: %+v, %v", evs, err)
	}
}

func testList(t *testing.T, s Store) {
	ctx := context.Background()
	var want []string
	for i := range 7 {
		u := newUser(t, fmt.Sprintf("l%d@example.com", i))
		if i%3 == 0 {
			u.Status = domain.Suspended
		}
		if err := s.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
		want = append(want, u.ID) // UUIDv7: creation order is id order
	}
	var got []string
	after := ""
	for {
		page, err := s.List(ctx, ListQuery{After: after, Limit: 3})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range page {
			got = append(got, u.ID)
		}
		if len(page) < 3 {
			break
		}
		after = page[len(page)-1].ID
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("paged ids %v, want %v", got, want)
	}
	suspended, err := s.List(ctx, ListQuery{Status: domain.Suspended, Limit: 10})
	if err != nil || len(suspended) != 3 {
		t.Fatalf("status filter: %d users, %v; want 3", len(suspended), err)
	}
}

func testEvents(t *testing.T, s Store) {
	ctx := context.Background()
	a, b := newUser(t, "ea@example.com"), newUser(t, "eb@example.com")
	for _, u := range []domain.User{a, b} {
		if err := s.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	st := domain.Inactive
	a2, _ := a.Apply(domain.Patch{Status: &st}, now.Add(time.Minute))
	if err := s.Update(ctx, a2, 1); err != nil {
		t.Fatal(err)
	}
	all, err := s.Events(ctx, EventQuery{})
	if err != nil || len(all) != 3 {
		t.Fatalf("events: %d, %v; want 3", len(all), err)
	}
	if all[0].Kind != domain.Created || all[2].Kind != domain.Updated || all[2].User != a2 || !(all[0].ID < all[1].ID && all[1].ID < all[2].ID) {
		t.Fatalf("events out of order or wrong: %+v", all)
	}
	last, err := s.LastEventID(ctx)
	if err != nil || last != all[2].ID {
		t.Fatalf("LastEventID = %d, %v; want %d", last, err, all[2].ID)
	}
	cases := []struct {
		name string
		q    EventQuery
		want int
	}{
		{"after the first", EventQuery{AfterID: all[0].ID}, 2},
		{"one user", EventQuery{UserID: a.ID}, 2},
		{"since a time", EventQuery{Since: now.Add(30 * time.Second)}, 1},
		{"limit", EventQuery{Limit: 1}, 1},
		{"after the last", EventQuery{AfterID: last}, 0},
	}
	for _, tc := range cases {
		got, err := s.Events(ctx, tc.q)
		if err != nil || len(got) != tc.want {
			t.Errorf("%s: %d events, %v; want %d", tc.name, len(got), err, tc.want)
		}
	}
}

// testConcurrentEvents has writers and a poller race; the poller must see
// every event exactly once, in id order, however commits interleave.
func testConcurrentEvents(t *testing.T, s Store) {
	ctx := context.Background()
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers*each)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				u, err := domain.NewUser(fmt.Sprintf("w%d-%d@example.com", w, i), "W", domain.DefaultPreferences(), time.Now())
				if err == nil {
					err = s.Create(ctx, u)
				}
				if err != nil {
					errs <- err
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	seen := map[int64]bool{}
	var cursor int64
	poll := func() int {
		evs, err := s.Events(ctx, EventQuery{AfterID: cursor, Limit: 7})
		if err != nil {
			t.Error(err)
			return 0
		}
		for _, e := range evs {
			if seen[e.ID] || e.ID <= cursor {
				t.Errorf("event %d delivered twice or out of order", e.ID)
			}
			seen[e.ID] = true
			cursor = e.ID
		}
		return len(evs)
	}
	for finished := false; !finished; {
		select {
		case <-done:
			finished = true
		default:
		}
		poll()
	}
	for poll() > 0 { // drain what committed after the last poll
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if len(seen) != writers*each {
		t.Fatalf("poller saw %d events, want %d", len(seen), writers*each)
	}
}

func eventCount(t *testing.T, s Store) int {
	evs, err := s.Events(context.Background(), EventQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}
