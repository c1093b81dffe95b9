package promtest_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/msctl/msctl/internal/promtest"
)

// successRate is Flagger's request-success-rate query on Istio's metrics.
func successRate(namespace, workload, window string) string {
	sel := fmt.Sprintf(`reporter="destination",destination_workload_namespace=%q,destination_workload=~%q`, namespace, workload)
	return fmt.Sprintf(`sum(rate(istio_requests_total{%s,response_code!~"5.*"}[%s])) / sum(rate(istio_requests_total{%s}[%s])) * 100`,
		sel, window, sel, window)
}

// requestDuration is Flagger's request-duration query: the P99 in ms.
func requestDuration(namespace, workload, window string) string {
	return fmt.Sprintf(`histogram_quantile(0.99, sum(rate(istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace=%q,destination_workload=~%q}[%s])) by (le))`,
		namespace, workload, window)
}

// scalar runs an instant query at ts (now when zero) that must return one
// sample, and returns its value.
func scalar(t *testing.T, prom *promtest.Prometheus, query string, ts time.Time) float64 {
	t.Helper()
	v, err := instant(prom, query, ts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func instant(prom *promtest.Prometheus, query string, ts time.Time) (float64, error) {
	if ts.IsZero() {
		ts = time.Now()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v, _, _, err := prom.API().Query(ctx, query, ts)
	if err != nil {
		return 0, fmt.Errorf("query %s: %w", query, err)
	}
	vec, ok := v.(model.Vector)
	if !ok || len(vec) != 1 {
		return 0, fmt.Errorf("query %s: got %v, want one sample", query, v)
	}
	return float64(vec[0].Value), nil
}

// waitCount polls the exporter until the workload has received at least n
// requests.
func waitCount(t *testing.T, exp *promtest.IstioExporter, namespace, workload string, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, _ := exp.Counts(namespace, workload)
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s received %d requests in 20 s, want %d", namespace, workload, got, n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A stable and a canary workload, scraped by a real Prometheus and queried
// with Flagger's queries, as the canary tests will.
func TestFlaggerQueriesOnRealPrometheus(t *testing.T) {
	const ns = "shop"
	began := time.Now()

	exp := promtest.NewIstioExporter(t)
	// Stable: Poisson arrivals, no failures, every request 20 ms.
	exp.SetTraffic(ns, "user", promtest.Traffic{RPS: 20, P50MS: 20})
	// Canary: steady arrivals so the figures are exact; one request in five
	// fails, one in ten takes 400 ms and the others 30 ms.
	var served int
	exp.SetTraffic(ns, "user-canary", promtest.Traffic{
		RPS: 10, ErrorRatio: 0.2, Steady: true,
		LatencyMS: func() float64 {
			served++
			if served%10 == 0 {
				return 400
			}
			return 30
		},
	})

	prom := promtest.StartPrometheus(t, exp.Target())
	t.Logf("exporter and Prometheus up in %s", time.Since(began).Round(time.Millisecond))

	// rate() sees only what happened after the first scrape: wait for 4 s
	// more of canary traffic, and for Prometheus to have scraped it.
	seen, _ := exp.Counts(ns, "user-canary")
	waitCount(t, exp, ns, "user-canary", seen+40)
	prom.WaitScrape(t)
	t.Logf("4 s of canary traffic scraped after %s", time.Since(began).Round(time.Millisecond))

	checks := []struct {
		name     string
		query    string
		min, max float64
	}{
		{"canary success rate", successRate(ns, "user-canary", "30s"), 77, 83},
		{"stable success rate", successRate(ns, "user", "30s"), 100, 100},
		// A rate over a window longer than the data is diluted (rate divides
		// by the window), so the rate is taken over the last 3 s only.
		{"canary request rate", fmt.Sprintf(`sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace=%q,destination_workload="user-canary"}[3s]))`, ns), 8.5, 11.5},
		// 10% of requests in (250, 500]: the 0.99 quantile is in that bucket.
		{"canary P99", requestDuration(ns, "user-canary", "30s"), 250, 500},
		// Every request in (10, 25]: 10 + 15 * 0.99.
		{"stable P99", requestDuration(ns, "user", "30s"), 24.85 - 1e-9, 24.85 + 1e-9},
	}
	for _, c := range checks {
		got := scalar(t, prom, c.query, time.Time{})
		t.Logf("%s = %.4g", c.name, got)
		if !(got >= c.min && got <= c.max) {
			t.Errorf("%s = %v, want %v to %v\n  %s", c.name, got, c.min, c.max, c.query)
		}
	}

	// Stopped, the server refuses connections: what "Prometheus stopped
	// mid-canary" looks like to a client.
	stopped := time.Now()
	prom.Stop()
	t.Logf("stopped in %s", time.Since(stopped).Round(time.Millisecond))
	_, err := instant(prom, successRate(ns, "user-canary", "30s"), time.Time{})
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("query after Stop: %v, want a refused connection", err)
	}

	// Started again on the same port and data: the earlier samples are back
	// and new scrapes arrive.
	restarted := time.Now()
	prom.Start()
	t.Logf("started again in %s", time.Since(restarted).Round(time.Millisecond))
	prom.WaitScrape(t)
	before := scalar(t, prom, `sum(istio_requests_total{destination_workload="user-canary"})`, stopped.Add(-time.Second))
	if before < 40 {
		t.Errorf("canary requests stored before the stop: %v after restart, want at least 40", before)
	}
	if got := scalar(t, prom, successRate(ns, "user-canary", "30s"), time.Time{}); math.Abs(got-80) > 3 {
		t.Errorf("canary success rate after restart = %v, want about 80", got)
	}
	t.Logf("whole test %s", time.Since(began).Round(time.Millisecond))
}
