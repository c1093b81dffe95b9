package loadgen

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestClosedLoopCountsCalls(t *testing.T) {
	var n atomic.Int64
	rate, err := ClosedLoop(context.Background(), 4, 200*time.Millisecond, func(context.Context) error {
		n.Add(1)
		time.Sleep(time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Four workers at no more than one call per millisecond each.
	if rate <= 0 || rate > 4000 || n.Load() == 0 {
		t.Fatalf("rate %.0f/s from %d calls", rate, n.Load())
	}
}

func TestClosedLoopStopsAtFirstError(t *testing.T) {
	boom := errors.New("boom")
	var n atomic.Int64
	_, err := ClosedLoop(context.Background(), 2, 10*time.Second, func(context.Context) error {
		if n.Add(1) == 5 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestOpenLoopKeepsTheSchedule(t *testing.T) {
	var n atomic.Int64
	// Each call takes longer than the interval: a closed loop would slow
	// down, an open one still starts every call on time.
	lat, err := OpenLoop(context.Background(), 200, 250*time.Millisecond, func(context.Context) error {
		n.Add(1)
		time.Sleep(20 * time.Millisecond)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(lat) != 50 || n.Load() != 50 {
		t.Fatalf("%d latencies from %d calls, want 50", len(lat), n.Load())
	}
	if p := Percentile(lat, 0.5); p < 20*time.Millisecond {
		t.Fatalf("median %v shorter than the call", p)
	}
	for i := 1; i < len(lat); i++ {
		if lat[i] < lat[i-1] {
			t.Fatal("latencies not sorted")
		}
	}
}

func TestPercentile(t *testing.T) {
	lat := []time.Duration{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	for _, tc := range []struct {
		p    float64
		want time.Duration
	}{{0, 1}, {0.5, 5}, {0.99, 9}, {1, 10}} {
		if got := Percentile(lat, tc.p); got != tc.want {
			t.Errorf("Percentile(%v) = %v, want %v", tc.p, got, tc.want)
		}
	}
	if Percentile(nil, 0.99) != 0 {
		t.Error("Percentile of nothing is not 0")
	}
}

func TestOpenLoopRefusesRatesItCannotSchedule(t *testing.T) {
	call := func(context.Context) error { t.Error("called"); return nil }
	for _, rate := range []float64{0, -1, 0.5, 2e9} {
		if _, err := OpenLoop(context.Background(), rate, time.Second, call); err == nil {
			t.Errorf("rate %g accepted", rate)
		}
	}
}
