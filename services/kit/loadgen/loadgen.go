// Package loadgen offers load to one call, in a closed loop to find its
// peak and in an open loop to measure latency at a given rate, for the
// services' benchmarks (hack/bench). No service imports it.
package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Call is one request under load.
type Call func(context.Context) error

// ClosedLoop runs workers that each start a call as soon as their last
// one returns, for d, and returns the completed calls per second. The
// first error stops the run and is returned.
func ClosedLoop(ctx context.Context, workers int, d time.Duration, call Call) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var (
		n        atomic.Int64
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	begin := time.Now()
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				// A call still running at the deadline completes: cutting it
				// off would count a server-side success as an error.
				if err := call(context.WithoutCancel(ctx)); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(begin).Seconds(), firstErr
}

// OpenLoop starts calls at rate per second for d whether or not earlier
// ones have finished, so queueing shows in the latencies instead of
// slowing the offered load (no coordinated omission). Each latency counts
// from the call's scheduled start. It returns the latencies sorted, and
// the first error.
func OpenLoop(ctx context.Context, rate float64, d time.Duration, call Call) ([]time.Duration, error) {
	if !(rate >= 1/d.Seconds()) || rate > 1e9 {
		return nil, fmt.Errorf("loadgen: a rate of %g calls/s over %s starts no call or more than one a nanosecond", rate, d)
	}
	interval := time.Duration(float64(time.Second) / rate)
	total := int(d / interval)
	all := make([]time.Duration, total)
	started := 0
	var (
		wg       sync.WaitGroup
		firstErr error
		once     sync.Once
	)
	begin := time.Now()
	for i := range total {
		due := begin.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		if ctx.Err() != nil {
			break
		}
		started++
		wg.Go(func() {
			if err := call(ctx); err != nil {
				once.Do(func() { firstErr = err })
			}
			all[i] = time.Since(due)
		})
	}
	wg.Wait()
	lat := all[:started]
	slices.Sort(lat)
	return lat, firstErr
}

// Percentile returns the p-th quantile (0 to 1) of sorted latencies, or 0
// for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[int(p*float64(len(sorted)-1))]
}
