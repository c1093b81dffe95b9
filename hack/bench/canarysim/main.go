// Command canarysim replays canary scenarios with random traffic and scores
// two decision rules on the same requests: msctl's sequential test
// (evaluated every few seconds) and Flagger's point-estimate rule
// (decision: threshold, evaluated at each interval's end, rolled back at
// maxFailedChecks failed checks). Both go through analysis.Decide, the
// function live canaries call. Seeded: the same flags give the same figures.
//
// Usage: go run ./hack/bench/canarysim [-runs 1000] [-seed 1]
package main

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/msctl/msctl/internal/analysis"
)

const (
	defaultInterval = 60 // seconds, Flagger's and msctl's default
	evalEvery       = 5  // seconds between two sequential checks
	maxFailedChecks = 2
	healthyErrRate  = 0.002 // safely below the 1% a 99% threshold allows
	minSuccessRate  = 99.0
	maxP95          = 500.0 // ms, a bound of Istio's buckets
	// Latency is log-normal with sigma 0.5: healthy P95 400 ms (1.8% of
	// requests over 500 ms), +50% gives P95 600 ms (10% over 500 ms).
	latencySigma   = 0.5
	healthyP95     = 400.0
	onsetIntervals = 1  // errors start with the second interval (step 2)
	maxIntervals   = 30 // a bad canary not rolled back by then counts as missed
)

type scenario struct {
	name     string
	rps      float64
	errRate  float64 // after the onset
	slowdown float64 // latency factor after the onset; 1 = none
	healthy  bool    // no onset: every rollback is false
	latency  bool    // judged on P95 latency rather than the success rate
	length   int     // intervals, for healthy canaries
	interval int     // seconds; 0 is the default
}

// every is sc's analysis interval in seconds.
func (sc scenario) every() int {
	if sc.interval == 0 {
		return defaultInterval
	}
	return sc.interval
}

type rule struct {
	name   string
	metric analysis.Metric
}

// outcome of one rule on one run.
type outcome struct {
	rolledBack bool
	afterOnset float64 // intervals from the onset to the rollback
	holds      int     // interval ends at which a sequential check did not pass
	ends       int
}

// priorA and priorB are the sequential test's prior, to compare others with
// the default.
var priorA, priorB float64

func main() {
	runs := flag.Int("runs", 1000, "runs per scenario")
	seed := flag.Uint64("seed", 1, "base seed; run i of scenario j uses PCG(seed, j*1e6+i)")
	flag.Float64Var(&priorA, "prior-a", analysis.DefaultPriorA, "the sequential test's Beta prior, a")
	flag.Float64Var(&priorB, "prior-b", analysis.DefaultPriorB, "the sequential test's Beta prior, b")
	flag.Parse()

	scenarios := []scenario{
		{name: "20% errors", rps: 1, errRate: 0.20, slowdown: 1},
		{name: "20% errors", rps: 10, errRate: 0.20, slowdown: 1},
		{name: "5% errors", rps: 1, errRate: 0.05, slowdown: 1},
		{name: "5% errors", rps: 10, errRate: 0.05, slowdown: 1},
		{name: "+50% latency (P95 400->600 ms)", rps: 1, errRate: healthyErrRate, slowdown: 1.5, latency: true},
		{name: "+50% latency (P95 400->600 ms)", rps: 10, errRate: healthyErrRate, slowdown: 1.5, latency: true},
		{name: "healthy 0.2% errors, 10 intervals", rps: 1, errRate: healthyErrRate, slowdown: 1, healthy: true, length: 10},
		{name: "healthy 0.2% errors, 10 intervals", rps: 10, errRate: healthyErrRate, slowdown: 1, healthy: true, length: 10},
		{name: "healthy P95 400 ms, 10 intervals", rps: 1, errRate: healthyErrRate, slowdown: 1, healthy: true, length: 10, latency: true},
		{name: "healthy P95 400 ms, 10 intervals", rps: 10, errRate: healthyErrRate, slowdown: 1, healthy: true, length: 10, latency: true},
		// Thin traffic (issue 20): a canary at a low weight of a quiet
		// service, about 2.5 requests per 5 s interval.
		{name: "30% errors, 5 s interval", rps: 0.5, errRate: 0.30, slowdown: 1, interval: 5},
		{name: "20% errors, 5 s interval", rps: 0.5, errRate: 0.20, slowdown: 1, interval: 5},
		{name: "healthy 0.2% errors, 60 intervals of 5 s", rps: 0.5, errRate: healthyErrRate, slowdown: 1, healthy: true, length: 60, interval: 5},
	}
	fmt.Printf("canarysim -runs %d -seed %d: interval %ds unless the scenario says, sequential checks every %ds (confidence %g, prior Beta(%g, %g)), threshold rule at interval ends with maxFailedChecks %d; errors begin %d interval(s) after the start\n\n",
		*runs, *seed, defaultInterval, evalEvery, analysis.DefaultConfidence, priorA, priorB, maxFailedChecks, onsetIntervals)

	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "scenario\trps\trule\trolled back\tintervals from onset: median\tp90\tmean\tsteps held")
	for j, sc := range scenarios {
		rules := []rule{
			{"sequential", analysis.Metric{Name: analysis.SuccessRate, Min: ptr(minSuccessRate)}},
			{"threshold", analysis.Metric{Name: analysis.SuccessRate, Min: ptr(minSuccessRate), Decision: analysis.DecisionThreshold}},
		}
		if sc.latency {
			rules = []rule{
				{"sequential", analysis.Metric{Name: analysis.DurationP95, Max: ptr(maxP95)}},
				{"threshold", analysis.Metric{Name: analysis.DurationP95, Max: ptr(maxP95), Decision: analysis.DecisionThreshold}},
			}
		}
		results := make([][]outcome, len(rules))
		for i := range *runs {
			tr := newTraffic(sc, rand.New(rand.NewPCG(*seed, uint64(j)*1e6+uint64(i))))
			for k, r := range rules {
				results[k] = append(results[k], replay(sc, r.metric, tr))
			}
		}
		for k, r := range rules {
			fmt.Fprintln(w, summarize(sc, r.name, results[k]))
		}
	}
	w.Flush()
}

// traffic is one run's requests, second by second, shared by both rules.
type traffic struct {
	requests, errors, slow []float64 // per second
	buckets                [][]float64
}

var bounds = analysis.IstioBuckets

func newTraffic(sc scenario, r *rand.Rand) traffic {
	interval := sc.every()
	seconds := maxIntervals * interval
	if sc.healthy {
		seconds = sc.length * interval
	}
	mu := math.Log(healthyP95) - 1.6448536269514722*latencySigma
	var t traffic
	for sec := range seconds {
		p, slow := healthyErrRate, 1.0
		if !sc.healthy && sec >= onsetIntervals*interval {
			p, slow = sc.errRate, sc.slowdown
		}
		n := poisson(r, sc.rps)
		b := make([]float64, len(bounds))
		var e, s float64
		for range int(n) {
			if r.Float64() < p {
				e++
			}
			ms := slow * math.Exp(mu+latencySigma*r.NormFloat64())
			if ms > maxP95 {
				s++
			}
			for i, le := range bounds {
				if ms <= le {
					b[i]++
				}
			}
		}
		t.requests = append(t.requests, n)
		t.errors = append(t.errors, e)
		t.slow = append(t.slow, s)
		t.buckets = append(t.buckets, b)
	}
	return t
}

// replay runs one rule over a run's traffic.
func replay(sc scenario, m analysis.Metric, t traffic) outcome {
	latency := m.Name == analysis.DurationP95
	sequential := m.Decision != analysis.DecisionThreshold
	var o outcome
	var total analysis.Counts
	failed := 0
	interval := sc.every()
	onset := float64(onsetIntervals * interval)
	for sec := 1; sec <= len(t.requests); sec++ {
		bad := t.errors[sec-1]
		if latency {
			bad = t.slow[sec-1]
		}
		total.Requests += t.requests[sec-1]
		total.Bad += bad
		end := sec%interval == 0
		if !(end || sequential && sec%evalEvery == 0) {
			continue
		}
		obs := analysis.Observation{Total: total, Window: window(t, sec, interval, latency)}
		obs.Value = value(t, sec, interval, latency)
		v := analysis.Decide(m, obs, analysis.Sequential{PriorA: priorA, PriorB: priorB})
		if sequential {
			if end {
				o.ends++
				if v.Decision != analysis.Pass {
					o.holds++
				}
			}
			if v.Decision == analysis.Fail {
				return rollback(o, sc, float64(sec), onset)
			}
			continue
		}
		// Flagger counts a check with no values as failed too.
		if v.Decision == analysis.Fail || v.Decision == analysis.NoData {
			if failed++; failed >= maxFailedChecks {
				return rollback(o, sc, float64(sec), onset)
			}
		}
	}
	return o
}

func rollback(o outcome, sc scenario, at, onset float64) outcome {
	o.rolledBack = true
	if !sc.healthy {
		o.afterOnset = (at - onset) / float64(sc.every())
	}
	return o
}

// window is the canary's counts over the last interval.
func window(t traffic, sec, interval int, latency bool) analysis.Counts {
	var c analysis.Counts
	for s := max(0, sec-interval); s < sec; s++ {
		c.Requests += t.requests[s]
		if latency {
			c.Bad += t.slow[s]
		} else {
			c.Bad += t.errors[s]
		}
	}
	return c
}

// value is what Flagger's query reads over the last interval: the success
// rate, or the P95 from the histogram as histogram_quantile interpolates it.
func value(t traffic, sec, interval int, latency bool) analysis.Sample {
	w := window(t, sec, interval, latency)
	if w.Requests == 0 {
		return analysis.Sample{}
	}
	if !latency {
		var e float64
		for s := max(0, sec-interval); s < sec; s++ {
			e += t.errors[s]
		}
		return analysis.Sample{Value: 100 * (1 - e/w.Requests), OK: true}
	}
	cum := make([]float64, len(bounds))
	for s := max(0, sec-interval); s < sec; s++ {
		for i := range bounds {
			cum[i] += t.buckets[s][i]
		}
	}
	rank := 0.95 * w.Requests
	lo, below := 0.0, 0.0
	for i, le := range bounds {
		if cum[i] >= rank {
			return analysis.Sample{Value: lo + (le-lo)*(rank-below)/(cum[i]-below), OK: true}
		}
		lo, below = le, cum[i]
	}
	// In the +Inf bucket: histogram_quantile returns the highest bound.
	return analysis.Sample{Value: bounds[len(bounds)-1], OK: true}
}

func summarize(sc scenario, name string, os []outcome) string {
	var times []float64
	holds, ends := 0, 0
	for _, o := range os {
		if o.rolledBack {
			times = append(times, o.afterOnset)
		}
		holds += o.holds
		ends += o.ends
	}
	held := "-"
	if ends > 0 {
		held = fmt.Sprintf("%.1f%%", 100*float64(holds)/float64(ends))
	}
	back := fmt.Sprintf("%d/%d", len(times), len(os))
	if sc.healthy {
		return fmt.Sprintf("%s\t%g\t%s\t%s (false)\t-\t-\t-\t%s", sc.name, sc.rps, name, back, held)
	}
	if len(times) == 0 {
		return fmt.Sprintf("%s\t%g\t%s\t%s\t-\t-\t-\t%s", sc.name, sc.rps, name, back, held)
	}
	slices.Sort(times)
	var sum float64
	for _, x := range times {
		sum += x
	}
	return fmt.Sprintf("%s\t%g\t%s\t%s\t%.2f\t%.2f\t%.2f\t%s", sc.name, sc.rps, name, back,
		times[len(times)/2], times[len(times)*9/10], sum/float64(len(times)), held)
}

func poisson(r *rand.Rand, mean float64) float64 {
	l, k, p := math.Exp(-mean), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func ptr(f float64) *float64 { return &f }
