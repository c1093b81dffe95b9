package analysis

import (
	"math"
	"testing"
)

var posInf = math.Inf(1)

func val(f float64) Sample { return Sample{Value: f, OK: true} }

func TestDecide(t *testing.T) {
	sr99 := Metric{Name: SuccessRate, Min: ptr(99)}
	sr99threshold := Metric{Name: SuccessRate, Min: ptr(99), Decision: DecisionThreshold}
	p95 := Metric{Name: DurationP95, Max: ptr(500)}
	rel := Metric{Name: SuccessRate, Relative: &Relative{MaxDrop: 0.5}}
	relP99 := Metric{Name: Duration, Relative: &Relative{MaxRatio: 1.2}}
	custom := Metric{Name: "queue-depth", Query: "vector(1)", Min: ptr(1), Max: ptr(10)}
	tests := []struct {
		name     string
		m        Metric
		o        Observation
		decision Decision
		reason   string
	}{
		{"healthy canary passes", sr99,
			Observation{Value: val(99.8), Window: Counts{1000, 2}, Total: Counts{5000, 10}}, Pass,
			"success rate 99.8% (998 of 1000 requests) >= 99% threshold"},
		{"one error among 60 holds, never fails", sr99,
			Observation{Value: val(98.33), Window: Counts{60, 1}, Total: Counts{60, 1}}, Hold,
			"success rate 98.33% (59 of 60 requests) < 99% threshold, but evidence 0.549 < 100"},
		{"the threshold rule fails the same interval", sr99threshold,
			Observation{Value: val(98.33), Window: Counts{60, 1}}, Fail,
			"success rate 98.33% (59 of 60 requests) < 99% threshold"},
		{"20% errors fail at once", sr99,
			Observation{Value: val(80), Window: Counts{30, 6}, Total: Counts{30, 6}}, Fail,
			"6 of 30 requests failed since the start (20%): evidence 48679.467 >= 100 (99% confidence) that more than 1% are failed (success rate below 99%; failed: HTTP 5xx, a gRPC server error or no ready pod)"},
		{"failing evidence beats a thin window", Metric{Name: SuccessRate, Min: ptr(99), MinRequests: 100},
			Observation{Value: val(80), Window: Counts{30, 6}, Total: Counts{30, 6}}, Fail, "evidence 48679.467 >= 100"},
		{"two errors in two requests are thin evidence", sr99,
			Observation{Value: val(0), Window: Counts{2, 2}, Total: Counts{2, 2}}, Hold, "evidence 57.571 < 100"},
		{"no requests is no data", sr99,
			Observation{Window: Counts{0, 0}}, NoData, "no canary requests in the last interval; holding"},
		{"NaN is no data", custom,
			Observation{}, NoData, "the query gave no data (an empty result or NaN); holding"},
		{"onNoData: pass", Metric{Name: SuccessRate, Min: ptr(99), OnNoData: OnNoDataPass},
			Observation{}, Pass, "no canary requests in the last interval; onNoData: pass"},
		{"below minRequests", Metric{Name: SuccessRate, Min: ptr(99), MinRequests: 50},
			Observation{Value: val(100), Window: Counts{49, 0}, Total: Counts{49, 0}}, NoData,
			"49 canary requests in the last interval, fewer than minRequests 50; holding"},
		{"P95 within", p95,
			Observation{Value: val(420), Window: Counts{600, 12}, Total: Counts{600, 12}}, Pass, "P95 420 ms (600 requests) <= 500 ms threshold"},
		{"P95 in the +Inf bucket", Metric{Name: DurationP95, Max: ptr(500), Decision: DecisionThreshold},
			Observation{Value: val(posInf), Window: Counts{600, 100}}, Fail, "P95 +Inf ms (600 requests) > 500 ms threshold"},
		{"slow requests fail the sequential test", p95,
			Observation{Value: val(800), Window: Counts{600, 120}, Total: Counts{600, 120}}, Fail,
			"120 of 600 requests slower than 500 ms since the start (20%): evidence"},
		{"relative: canary clearly worse", rel,
			Observation{Value: val(90), Stable: val(99.9), Window: Counts{100, 10}, Total: Counts{300, 30}, StableTotal: Counts{30000, 30}}, Fail,
			"more than 0.5 points worse"},
		{"relative: a little worse, not shown", rel,
			Observation{Value: val(98.8), Stable: val(99.9), Window: Counts{100, 1}, Total: Counts{100, 1}, StableTotal: Counts{10000, 10}}, Hold,
			"success rate 98.8% (99 of 100 requests) < 99.4% (the stable's 99.9% less 0.5 points), but canary error rate at least"},
		{"relative: stable without data", rel,
			Observation{Value: val(99), Window: Counts{100, 1}, Total: Counts{100, 1}}, NoData,
			"the stable's query gave no data"},
		{"relative P99 within", relP99,
			Observation{Value: val(110), Stable: val(100), Window: Counts{100, 0}}, Pass, "P99 110 ms (100 requests) <= 120 ms (1.2x the stable's 100 ms)"},
		{"custom within", custom, Observation{Value: val(5)}, Pass, "queue-depth 5 within 1..10"},
		{"custom above", custom, Observation{Value: val(12)}, Fail, "queue-depth 12 > 10 threshold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := Validate(tt.m); err != nil {
				t.Fatal(err)
			}
			v := Decide(tt.m, tt.o, Sequential{})
			if v.Decision != tt.decision || !contains(v.Reason, tt.reason) {
				t.Errorf("got %s: %s\nwant %s: ...%s...", v.Decision, v.Reason, tt.decision, tt.reason)
			}
		})
	}
}
