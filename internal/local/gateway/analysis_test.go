package gateway

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/promtest"
	"github.com/msctl/msctl/internal/routes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The canary analysis's built-in queries, run by a real Prometheus that
// scrapes the gateway, see the success rate and latency the gateway saw.
func TestBuiltInQueriesSeeTheGatewaysRequests(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	if err := tg.SetTraffic("user", routes.Traffic{Weight: 50}); err != nil {
		t.Fatal(err)
	}
	metrics := httptest.NewServer(promhttp.HandlerFor(tg.reg, promhttp.HandlerOpts{}))
	t.Cleanup(metrics.Close)
	prom := promtest.StartPrometheus(t, strings.TrimPrefix(metrics.URL, "http://"))

	c := &http.Client{}
	// send sends n requests to the canary (route value 99) or the stable
	// (0), every fifth failing with a 500, each taking about 30 ms.
	send := func(n int, canary bool) {
		value := "0"
		if canary {
			value = "99"
		}
		var wg sync.WaitGroup
		sem := make(chan struct{}, 8)
		for i := range n {
			h := http.Header{RouteValueHeader: {value}, sleepHeader: {"30ms"}}
			if canary && i%5 == 4 {
				h.Set(statusHeader, "500")
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				get(t, c, tg.edge, "/api/v1/users", h)
			})
		}
		wg.Wait()
	}
	// A first scrape holds every series, at the ratio that follows, so
	// that rate() extrapolates the good and the bad alike.
	send(5, true)
	send(5, false)
	prom.WaitScrape(t)
	before := canaryHistogram(t, tg.reg)
	since := time.Now()
	send(200, true)
	send(100, false)
	prom.WaitScrape(t)
	after := canaryHistogram(t, tg.reg)

	api, err := analysis.NewPrometheus(prom.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &analysis.Analyzer{Querier: api}
	target := analysis.Target{Namespace: "shop", Service: "user", Canary: "user-canary", Stable: "user", Interval: time.Minute}
	ctx := context.Background()
	minRate, maxP95 := 99.0, 500.0

	check := a.Check(ctx, analysis.Metric{Name: analysis.SuccessRate, Min: &minRate}, target, analysis.Window{Since: since, At: time.Now()})
	if check.Value == nil {
		t.Fatalf("no canary success rate: %+v", check)
	}
	if math.Abs(float64(*check.Value)-80) > 0.01 {
		t.Errorf("canary success rate %v, want the 80%% the gateway saw (check: %+v)", check.Value, check)
	}
	if check.Decision == analysis.Error {
		t.Errorf("success rate check: %s", check.Reason)
	}
	t.Logf("canary success rate %v%% over %v requests", float64(*check.Value), check.Requests)
	stable := target
	stable.Canary = "user"
	if check := a.Check(ctx, analysis.Metric{Name: analysis.SuccessRate, Min: &minRate}, stable, analysis.Window{Since: since, At: time.Now()}); check.Value == nil || *check.Value != 100 {
		t.Errorf("stable success rate %v, want 100 (check: %+v)", check.Value, check)
	}

	check = a.Check(ctx, analysis.Metric{Name: analysis.DurationP95, Max: &maxP95}, target, analysis.Window{Since: since, At: time.Now()})
	want := quantile(0.95, after, before)
	if check.Value == nil {
		t.Fatalf("no canary P95: %+v", check)
	}
	if math.Abs(float64(*check.Value)-want) > 1 {
		t.Errorf("canary P95 %v ms, want %.2f ms from the gateway's histogram (check: %+v)", check.Value, want, check)
	}
	if check.Decision == analysis.Error {
		t.Errorf("duration check: %s", check.Reason)
	}
	t.Logf("P95 %v ms by the query, %.2f ms by the gateway's histogram", float64(*check.Value), want)
}

// bucket is a histogram bucket: its upper bound and cumulative count.
type bucket struct {
	le float64
	n  uint64
}

// canaryHistogram is user-canary's request duration histogram as the
// gateway holds it, +Inf last.
func canaryHistogram(t *testing.T, reg *prometheus.Registry) []bucket {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var out []bucket
	for _, f := range families {
		if f.GetName() != "istio_request_duration_milliseconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() != "destination_workload" || l.GetValue() != "user-canary" {
					continue
				}
				h := m.GetHistogram()
				if out == nil {
					for _, b := range h.GetBucket() {
						out = append(out, bucket{le: b.GetUpperBound()})
					}
					out = append(out, bucket{le: math.Inf(1)})
				}
				for i, b := range h.GetBucket() {
					out[i].n += b.GetCumulativeCount()
				}
				out[len(out)-1].n += h.GetSampleCount()
			}
		}
	}
	if out == nil {
		t.Fatal("no histogram for user-canary")
	}
	return out
}

// quantile is histogram_quantile's estimate of q over the observations
// between two readings of a histogram: linear within the bucket.
func quantile(q float64, after, before []bucket) float64 {
	total := float64(after[len(after)-1].n - before[len(before)-1].n)
	rank := q * total
	lower, below := 0.0, 0.0
	for i, b := range after {
		n := float64(b.n - before[i].n)
		if n >= rank {
			return lower + (b.le-lower)*(rank-below)/(n-below)
		}
		lower, below = b.le, n
	}
	return math.NaN()
}
