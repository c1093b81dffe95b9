// Package storetest is the contract every canarystate.Store keeps, run
// against each implementation by its own tests: compare-and-swap on the
// version, and no update lost between writers.
package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/canarystate"
)

// Run checks the contract. open returns a new Store of one service's state
// each time it is called, all sharing what is stored, as two processes
// would; the state starts absent.
func Run(t *testing.T, open func() canarystate.Store) {
	ctx := context.Background()
	a, b := open(), open()

	st, ver, err := a.Load(ctx)
	if err != nil || st != nil || ver != "" {
		t.Fatalf("Load of nothing = %v, %q, %v; want nil, \"\", nil", st, ver, err)
	}
	if _, err := a.Save(ctx, state("x", 0), "7"); !errors.Is(err, canarystate.ErrConflict) {
		t.Fatalf("Save of a missing state at a version: %v, want ErrConflict", err)
	}
	v1, err := a.Save(ctx, state("x", 0), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Save(ctx, state("x", 1), ""); !errors.Is(err, canarystate.ErrConflict) {
		t.Fatalf("second create: %v, want ErrConflict", err)
	}
	got, ver, err := b.Load(ctx)
	if err != nil || ver != v1 || got.Service != "x" || got.SchemaVersion != canarystate.SchemaVersion {
		t.Fatalf("Load after create = %+v, %q, %v; want version %q", got, ver, err, v1)
	}
	v2, err := b.Save(ctx, state("x", 1), v1)
	if err != nil || v2 == v1 {
		t.Fatalf("Save at the current version = %q, %v", v2, err)
	}
	if _, err := a.Save(ctx, state("x", 2), v1); !errors.Is(err, canarystate.ErrConflict) {
		t.Fatalf("Save at a stale version: %v, want ErrConflict", err)
	}
	if got, _, _ := a.Load(ctx); got.Step != 1 {
		t.Fatalf("a stale Save changed the state: step %d", got.Step)
	}

	// Writers that retry on conflict, as the driver does, lose nothing.
	const writers, each = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s := open()
			for range each {
				if err := increment(ctx, s); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got, _, _ := a.Load(ctx); got.Step != 1+writers*each {
		t.Fatalf("after %d increments the step is %d, want %d: an update was lost", writers*each, got.Step, 1+writers*each)
	}
}

func increment(ctx context.Context, s canarystate.Store) error {
	for {
		st, ver, err := s.Load(ctx)
		if err != nil {
			return err
		}
		st.Step++
		if _, err := s.Save(ctx, st, ver); errors.Is(err, canarystate.ErrConflict) {
			continue
		} else if err != nil {
			return err
		}
		return nil
	}
}

func state(service string, step int) *canarystate.State {
	return &canarystate.State{Service: service, Phase: canarystate.Progressing, Step: step, StartedAt: time.Unix(1700000000, 0).UTC()}
}
