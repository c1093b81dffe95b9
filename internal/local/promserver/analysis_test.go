package promserver_test

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/local/promserver"
	"github.com/msctl/msctl/internal/promtest"
)

// The canary analysis reaches the same verdicts on this server as on a
// real Prometheus (Debian's) scraping the same exporter at the same time,
// through the same client.
func TestAnalysisMatchesRealPrometheus(t *testing.T) {
	const ns = "shop"
	exp := promtest.NewIstioExporter(t)
	exp.SetTraffic(ns, "user", promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	// One request in five fails; latency as the stable's.
	exp.SetTraffic(ns, "user-canary", promtest.Traffic{RPS: 20, ErrorRatio: 0.2, P50MS: 20, P99MS: 80, Steady: true})

	prom := promtest.StartPrometheus(t, exp.Target())
	ours := start(t, t.TempDir(), promserver.Options{}, promserver.Target{
		Job: "promtest", URL: "http://" + exp.Target() + "/metrics", HonorLabels: true,
	})
	since := time.Now()
	// 10 s of traffic, scraped by both.
	time.Sleep(10 * time.Second)
	ours.wait(t, `count_over_time(up[12s])`, "10 scrapes", func(v model.Vector) bool { return len(v) == 1 && v[0].Value >= 10 })
	prom.WaitScrape(t)
	now := time.Now()

	real, err := analysis.NewPrometheus(prom.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	local, err := analysis.NewPrometheus(ours.url, nil)
	if err != nil {
		t.Fatal(err)
	}
	canary := analysis.Target{Namespace: ns, Service: "user", Canary: "user-canary", Stable: "user", Interval: 5 * time.Second}
	stable := canary
	stable.Canary = "user"
	pct99, ms500, rps10 := 99.0, 500.0, 10.0
	checks := []struct {
		name   string
		metric analysis.Metric
		target analysis.Target
		want   analysis.Decision // on both servers
	}{
		{"bad canary success rate, sequential", analysis.Metric{Name: analysis.SuccessRate, Min: &pct99}, canary, analysis.Fail},
		{"bad canary success rate, threshold", analysis.Metric{Name: analysis.SuccessRate, Min: &pct99, Decision: analysis.DecisionThreshold}, canary, analysis.Fail},
		{"bad canary against the stable", analysis.Metric{Name: analysis.SuccessRate, Relative: &analysis.Relative{MaxDrop: 5}}, canary, analysis.Fail},
		{"stable success rate, threshold", analysis.Metric{Name: analysis.SuccessRate, Min: &pct99, Decision: analysis.DecisionThreshold}, stable, analysis.Pass},
		{"canary P99 under 500 ms, threshold", analysis.Metric{Name: analysis.Duration, Max: &ms500, Decision: analysis.DecisionThreshold}, canary, analysis.Pass},
		{"custom query", analysis.Metric{Name: "requests", Query: `sum(rate(istio_requests_total{destination_workload="{{ target }}"}[{{ interval }}]))`, Min: &rps10}, canary, analysis.Pass},
	}
	a := func(q analysis.Querier) *analysis.Analyzer { return &analysis.Analyzer{Querier: q} }
	ctx := context.Background()
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			want := a(real).Check(ctx, c.metric, c.target, analysis.Window{Since: since, At: now})
			got := a(local).Check(ctx, c.metric, c.target, analysis.Window{Since: since, At: now})
			t.Logf("real Prometheus: %s (%s)", want.Decision, want.Reason)
			t.Logf("promserver:      %s (%s)", got.Decision, got.Reason)
			if got.Decision != want.Decision || got.Decision != c.want {
				t.Errorf("decision %s here, %s on Prometheus, want %s on both", got.Decision, want.Decision, c.want)
			}
			if !similar(got.Value, want.Value) || !similar(got.Stable, want.Stable) {
				t.Errorf("values %v and %v here, %v and %v on Prometheus", deref(got.Value), deref(got.Stable), deref(want.Value), deref(want.Stable))
			}
		})
	}
}

// similar reports whether two values of a check are both absent or within
// 10% of each other: the two servers scrape at different instants.
func similar(a, b *analysis.Number) bool {
	if a == nil || b == nil {
		return a == b
	}
	x, y := float64(*a), float64(*b)
	return math.Abs(x-y) <= 0.1*math.Max(math.Abs(x), math.Abs(y))
}

func deref(n *analysis.Number) any {
	if n == nil {
		return nil
	}
	return float64(*n)
}

// At half a request a second each response code of each revision is a
// series born with its first request and holding a few. The counts since
// the start are every request the exporter made, on both servers: counted
// with increase() alone, 40% errors read as far fewer and the canary held.
func TestThinTrafficCountsEveryRequest(t *testing.T) {
	const ns = "shop"
	exp := promtest.NewIstioExporter(t)
	prom := promtest.StartPrometheus(t, exp.Target())
	ours := start(t, t.TempDir(), promserver.Options{}, promserver.Target{
		Job: "promtest", URL: "http://" + exp.Target() + "/metrics", HonorLabels: true,
	})
	prom.WaitScrape(t)
	ours.wait(t, `up`, "a scrape", func(v model.Vector) bool { return len(v) == 1 })
	since := time.Now()
	thin := promtest.Traffic{RPS: 0.5, ErrorRatio: 0.4, Steady: true}
	exp.SetTraffic(ns, "user-canary", thin)
	time.Sleep(10 * time.Second)
	// A new revision: new series, as a restarted canary's would be.
	thin.Revision = "2"
	exp.SetTraffic(ns, "user-canary", thin)
	time.Sleep(10 * time.Second)
	thin.RPS = 0
	exp.SetTraffic(ns, "user-canary", thin)
	requests, errors := exp.Counts(ns, "user-canary")
	time.Sleep(2 * time.Second)
	prom.WaitScrape(t)
	ours.wait(t, `count_over_time(up[3s])`, "2 scrapes", func(v model.Vector) bool { return len(v) == 1 && v[0].Value >= 2 })
	now := time.Now()

	target := analysis.Target{Namespace: ns, Service: "user", Canary: "user-canary", Interval: 5 * time.Second}
	pct99 := 99.0
	m := analysis.Metric{Name: analysis.SuccessRate, Min: &pct99}
	for name, url := range map[string]string{"real Prometheus": prom.Addr(), "promserver": ours.url} {
		q, err := analysis.NewPrometheus(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		c := (&analysis.Analyzer{Querier: q}).Check(context.Background(), m, target, analysis.Window{Since: since, At: now})
		t.Logf("%s: %s (%s)", name, c.Decision, c.Reason)
		if c.TotalRequests != float64(requests) || c.TotalErrors != float64(errors) {
			t.Errorf("%s: %v requests, %v failed since the start; the exporter made %d and %d", name, c.TotalRequests, c.TotalErrors, requests, errors)
		}
		if c.Decision != analysis.Fail {
			t.Errorf("%s: %d of %d failed against a 99%% bar: got %s, want fail", name, errors, requests, c.Decision)
		}
	}
}
