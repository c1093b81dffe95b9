package analysis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/promql/promqltest"
	"github.com/prometheus/prometheus/storage"
)

// engineQuerier answers queries with Prometheus's own engine on series
// loaded in promqltest's notation, through the same result reading as the
// HTTP client.
type engineQuerier struct {
	engine  *promql.Engine
	storage storage.Queryable
}

func newEngineQuerier(t testing.TB, load string) engineQuerier {
	t.Helper()
	return engineQuerier{
		engine:  promqltest.NewTestEngine(t, false, 0, promqltest.DefaultMaxSamplesPerQuery),
		storage: promqltest.LoadedStorage(t, load),
	}
}

func (e engineQuerier) Query(ctx context.Context, query string, at time.Time) (Sample, error) {
	q, err := e.engine.NewInstantQuery(ctx, e.storage, nil, query, at)
	if err != nil {
		return Sample{}, err
	}
	defer q.Close()
	res := q.Exec(ctx)
	if res.Err != nil {
		return Sample{}, res.Err
	}
	switch v := res.Value.(type) {
	case promql.Vector:
		mv := make(model.Vector, len(v))
		for i, s := range v {
			mv[i] = &model.Sample{Value: model.SampleValue(s.F)}
		}
		return sampleOf(mv)
	case promql.Scalar:
		return sampleOf(&model.Scalar{Value: model.SampleValue(v.V)})
	}
	return Sample{}, fmt.Errorf("query gave a %s", res.Value.Type())
}

// istioSeries is a canary at 80 requests a minute with 5% 5xx and a P95 of
// 500 ms (P99 900 ms), a stable at 80 a minute with no errors and a P99 of
// 450 ms, and traffic that the selectors must leave out: the source
// reporter's copy and another namespace. Samples every 15 s from time 0.
const istioSeries = `
load 15s
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",response_code="200"} 0+19x80
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",response_code="503"} 0+1x80
	istio_requests_total{reporter="source",destination_workload_namespace="shop",destination_workload="user-canary",response_code="503"} 0+50x80
	istio_requests_total{reporter="destination",destination_workload_namespace="other",destination_workload="user-canary",response_code="500"} 0+50x80
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="user",response_code="200"} 0+20x80
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="pay-canary",response_code="200",grpc_response_status="0"} 0+9x80
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="pay-canary",response_code="200",grpc_response_status="14"} 0+1x80
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="pay-canary",response_code="200",grpc_response_status="5"} 0+10x80
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="down",response_code="503"} 0+5x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",le="100"} 0+10x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",le="250"} 0+15x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",le="500"} 0+19x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",le="1000"} 0+20x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",le="+Inf"} 0+20x80
	istio_request_duration_milliseconds_count{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary"} 0+20x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user",le="100.0"} 0+10x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user",le="250.0"} 0+15x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user",le="500.0"} 0+20x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user",le="+Inf"} 0+20x80
	istio_request_duration_milliseconds_count{reporter="destination",destination_workload_namespace="shop",destination_workload="user"} 0+20x80
`

var (
	shop   = Target{Namespace: "shop", Service: "user", Canary: "user-canary", Stable: "user", Interval: time.Minute}
	tenMin = time.Unix(600, 0)
)

// TestBuiltinQueries runs the built-in queries through Prometheus's engine
// on Istio-shaped series.
func TestBuiltinQueries(t *testing.T) {
	q := newEngineQuerier(t, istioSeries)
	stable := shop
	stable.Canary = shop.Stable
	grpc, down, nothing := shop, shop, shop
	grpc.Canary, down.Canary, nothing.Canary = "pay-canary", "down", "none"
	p95 := Metric{Name: DurationP95, Max: ptr(500)}
	p99 := Metric{Name: Duration, Max: ptr(500)}
	sr := Metric{Name: SuccessRate, Min: ptr(99)}
	countOf := func(m Metric, bad bool) string {
		total, slow := countTemplates(m)
		if bad {
			return slow
		}
		return total
	}
	tests := []struct {
		name   string
		tpl    string
		target Target
		window time.Duration
		want   float64
	}{
		{"canary success rate", valueTemplate(sr), shop, time.Minute, 95},
		{"stable success rate", valueTemplate(sr), stable, time.Minute, 100},
		{"canary P99", valueTemplate(p99), shop, time.Minute, 900},
		{"canary P95", valueTemplate(p95), shop, time.Minute, 500},
		{"stable P99", valueTemplate(p99), stable, time.Minute, 490},
		{"canary requests in the interval", countOf(sr, false), shop, time.Minute, 80},
		{"canary 5xx in the interval", countOf(sr, true), shop, time.Minute, 4},
		{"canary requests since the start", countOf(sr, false), shop, 10 * time.Minute, 800},
		{"canary 5xx since the start", countOf(sr, true), shop, 10 * time.Minute, 40},
		{"stable 5xx since the start: none", countOf(sr, true), stable, 10 * time.Minute, 0},
		{"no requests since the start: no data", countOf(sr, true), nothing, 10 * time.Minute, absent},
		// Envoy counts a failed gRPC call as 200 with its status; NotFound
		// is the client's mistake, Unavailable the server's.
		{"gRPC success rate", valueTemplate(sr), grpc, time.Minute, 95},
		{"gRPC server errors since the start", countOf(sr, true), grpc, 10 * time.Minute, 40},
		{"every request failed: 0, not no data", valueTemplate(sr), down, time.Minute, 0},
		{"canary timed requests since the start", countOf(p95, false), shop, 10 * time.Minute, 800},
		{"canary requests over 500 ms since the start", countOf(p95, true), shop, 10 * time.Minute, 40},
		{"stable requests over 500 ms (le=\"500.0\")", countOf(p95, true), stable, 10 * time.Minute, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			query, err := parseTemplate(tt.tpl, vars(tt.target, tt.window))
			if err != nil {
				t.Fatal(err)
			}
			got, err := q.Query(context.Background(), query, tenMin)
			if err != nil {
				t.Fatalf("%v\n%s", err, query)
			}
			if tt.want == absent {
				if got.OK {
					t.Errorf("got %+v, want no data\n%s", got, query)
				}
				return
			}
			if !got.OK || abs(got.Value-tt.want) > 1e-6*max(1, tt.want) {
				t.Errorf("got %+v, want %g\n%s", got, tt.want, query)
			}
		})
	}
}

func abs(f float64) float64 { return max(f, -f) }

// absent marks a query that must give no result.
const absent = -1

// TestCheckOnEngine runs whole checks, queries and decisions, on the
// loaded series.
func TestCheckOnEngine(t *testing.T) {
	a := &Analyzer{Querier: newEngineQuerier(t, istioSeries)}
	start := time.Unix(0, 0)
	noTraffic := shop
	noTraffic.Namespace = "empty"
	tests := []struct {
		name     string
		m        Metric
		target   Target
		decision Decision
		reason   string
	}{
		{"5% errors fail the sequential test", Metric{Name: SuccessRate, Min: ptr(99)}, shop, Fail,
			"40 of 800 requests failed since the start (5%): evidence"},
		{"the threshold rule fails the interval", Metric{Name: SuccessRate, Min: ptr(99), Decision: DecisionThreshold}, shop, Fail,
			"success rate 95% (76 of 80 requests) < 99% threshold"},
		{"a lower bar passes", Metric{Name: SuccessRate, Min: ptr(90)}, shop, Pass,
			"success rate 95% (76 of 80 requests) >= 90% threshold"},
		{"5% over 500 ms is P95 500 ms: not worse", Metric{Name: DurationP95, Max: ptr(500)}, shop, Pass,
			"P95 500 ms (80 requests) <= 500 ms threshold"},
		{"P99 900 ms fails the sequential test", Metric{Name: Duration, Max: ptr(500)}, shop, Fail,
			"40 of 800 requests slower than 500 ms since the start (5%)"},
		{"relative success rate", Metric{Name: SuccessRate, Relative: &Relative{MaxDrop: 0.5}}, shop, Fail,
			"more than 0.5 points worse"},
		{"relative P99, threshold rule", Metric{Name: Duration, Relative: &Relative{MaxRatio: 1.2}}, shop, Fail,
			"P99 900 ms (80 requests) > 588 ms (1.2x the stable's 490 ms)"},
		{"relative P99 within 2x", Metric{Name: Duration, Relative: &Relative{MaxRatio: 2}}, shop, Pass,
			"P99 900 ms (80 requests) <= 980 ms (2x the stable's 490 ms)"},
		{"custom query", Metric{Name: "errors", Query: `sum(rate(istio_requests_total{reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload="{{ target }}",response_code=~"5.."}[{{ interval }}]))`, Max: ptr(0.01)}, shop, Fail,
			"errors 0.067 > 0.01 threshold"},
		{"no traffic is no data", Metric{Name: SuccessRate, Min: ptr(99)}, noTraffic, NoData,
			"no canary requests in the last interval; holding"},
		{"no traffic with onNoData: fail", Metric{Name: SuccessRate, Min: ptr(99), OnNoData: OnNoDataFail}, noTraffic, Fail,
			"no canary requests in the last interval; onNoData: fail"},
		{"too few requests", Metric{Name: SuccessRate, Min: ptr(90), MinRequests: 100}, shop, NoData,
			"80 canary requests in the last interval, fewer than minRequests 100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := a.Check(context.Background(), tt.m, tt.target, Window{Since: start, At: tenMin})
			if c.Decision != tt.decision || !contains(c.Reason, tt.reason) {
				t.Errorf("got %s: %s\nwant %s: ...%s...", c.Decision, c.Reason, tt.decision, tt.reason)
			}
			if c.Query == "" || len(c.Queries) == 0 {
				t.Errorf("check records no query: %+v", c)
			}
		})
	}
}

// TestCheckMissingBucket: a histogram without a bucket at the threshold
// is an error that says so, not a silent zero.
func TestCheckMissingBucket(t *testing.T) {
	a := &Analyzer{Querier: newEngineQuerier(t, `
load 15s
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",le="400"} 0+19x80
	istio_request_duration_milliseconds_bucket{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",le="+Inf"} 0+20x80
	istio_request_duration_milliseconds_count{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary"} 0+20x80
`)}
	c := a.Check(context.Background(), Metric{Name: DurationP95, Max: ptr(500)}, shop, Window{Since: time.Unix(0, 0), At: tenMin})
	if c.Decision != Error || !contains(c.Reason, `has no bucket le="500"`) {
		t.Errorf("got %s: %s", c.Decision, c.Reason)
	}
}

// thinSeries writes promqltest series scraped every second from 0 to 40 s,
// each the count of its requests so far, absent before its first request
// as Istio's are. A negative time is a restart of the counting process: the
// counter starts again from 0. gone ends the series with a stale marker.
func thinSeries(labels string, at []int, gone int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tistio_requests_total{%s} ", labels)
	n, born := 0, false
	for k := 0; k <= 40; k++ {
		for _, a := range at {
			switch {
			case a == k:
				n++
				born = true
			case a == -k:
				n = 0
			}
		}
		switch {
		case gone != 0 && k > gone:
		case gone != 0 && k == gone:
			b.WriteString("stale ")
		case !born:
			b.WriteString("_ ")
		default:
			fmt.Fprintf(&b, "%d ", n)
		}
	}
	b.WriteString("\n")
	return b.String()
}

// staleAtStart is a series with 3 requests before 10 s, a stale marker
// at 10 s (a scrape that failed), and one more request at 20 s.
func staleAtStart(labels string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\tistio_requests_total{%s} _ _ 1 1 2 2 3 3 3 3 stale", labels)
	for k := 11; k <= 40; k++ {
		fmt.Fprintf(&b, " %d", map[bool]int{true: 4, false: 3}[k >= 20])
	}
	b.WriteString("\n")
	return b.String()
}

// TestCountsOnThinTraffic: at half a request a second, every caller's
// every response code is a series of its own, born with its first request
// and holding a few. Counted with increase(), a series loses its first
// requests, and one that holds a single request counts none: 30% errors
// read as about 10%. Each request since the start counts once.
func TestCountsOnThinTraffic(t *testing.T) {
	const sel = `reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",`
	load := "load 1s\n" +
		// There before the start (10 s), still there: 4 requests since.
		thinSeries(sel+`source_workload="a",response_code="200"`, []int{2, 4, 6, 12, 20, 28, 36}, 0) +
		// Born after the start: every request counts.
		thinSeries(sel+`source_workload="b",response_code="200"`, []int{15, 23, 31, 39}, 0) +
		thinSeries(sel+`source_workload="a",response_code="500"`, []int{17}, 0) +
		thinSeries(sel+`source_workload="b",response_code="500"`, []int{25, 33}, 0) +
		thinSeries(sel+`source_workload="c",response_code="503"`, []int{29}, 0) +
		// Restarted at 15 s: 2 requests since the start.
		thinSeries(sel+`source_workload="c",response_code="200"`, []int{5, -15, 21, 27}, 0) +
		// Born after the start and gone (its pod replaced) at 30 s: 2.
		thinSeries(sel+`source_workload="d",response_code="200"`, []int{12, 14}, 30) +
		// There before the start and gone: 1.
		thinSeries(sel+`source_workload="e",response_code="500"`, []int{3, 11}, 30) +
		// Restarted right after the start, below its value then: 2.
		thinSeries(sel+`source_workload="f",response_code="200"`, []int{1, 2, 3, 4, 5, 6, 7, 8, 9, -11, 13, 19}, 0) +
		// A failed scrape at the start (a stale marker), then on: 1.
		staleAtStart(sel+`source_workload="g",response_code="500"`)
	a := &Analyzer{Querier: newEngineQuerier(t, load)}
	at := time.Unix(40, 0)
	target := shop
	target.Interval = 10 * time.Second
	c := a.Check(context.Background(), Metric{Name: SuccessRate, Min: ptr(99)}, target, Window{Since: time.Unix(10, 0), At: at})
	if c.TotalRequests != 20 || c.TotalErrors != 6 {
		t.Errorf("since the start: %v requests, %v failed; want 20 and 6\n%s", c.TotalRequests, c.TotalErrors, strings.Join(c.Queries, "\n"))
	}
	// The last 10 s: 31, 33, 36 and 39; 33 failed.
	if c.Requests != 4 || c.Errors != 1 {
		t.Errorf("last interval: %v requests, %v failed; want 4 and 1", c.Requests, c.Errors)
	}
	if c.Decision != Fail {
		t.Errorf("6 of 20 failed against a 99%% bar: got %s (%s), want fail", c.Decision, c.Reason)
	}
}

// A request that found no ready canary pod is recorded only by the
// caller's sidecar, under the canary's Service with an unknown workload:
// it counts, and fails. What the caller's sidecar records of a request a
// canary pod answered is counted once, by the pod's sidecar.
func TestUnreachedRequestsFailTheTrack(t *testing.T) {
	const dst = `reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",`
	const src = `reporter="source",destination_service_namespace="shop",`
	load := "load 1s\n" +
		thinSeries(dst+`response_code="200"`, []int{2, 4, 6, 12, 14, 16, 18}, 0) +
		thinSeries(src+`destination_service_name="user-canary",destination_workload="user-canary",response_code="200"`, []int{2, 4, 6, 12, 14, 16, 18}, 0) +
		thinSeries(src+`destination_service_name="user-canary",destination_workload="unknown",response_code="503",response_flags="UH"`, []int{13, 17, 21, 25, 29, 33}, 0) +
		thinSeries(src+`destination_service_name="order-canary",destination_workload="unknown",response_code="503",response_flags="UH"`, []int{15, 16}, 0)
	a := &Analyzer{Querier: newEngineQuerier(t, load)}
	target := shop
	target.Interval = 10 * time.Second
	c := a.Check(context.Background(), Metric{Name: SuccessRate, Min: ptr(99)}, target, Window{Since: time.Unix(10, 0), At: time.Unix(40, 0)})
	if c.TotalRequests != 10 || c.TotalErrors != 6 {
		t.Errorf("since the start: %v requests, %v failed; want 10 and 6\n%s", c.TotalRequests, c.TotalErrors, strings.Join(c.Queries, "\n"))
	}
	if c.Requests != 1 || c.Errors != 1 || c.Value == nil || *c.Value != 0 {
		t.Errorf("last interval: %v requests, %v failed, success rate %v; want 1, 1 and 0%%", c.Requests, c.Errors, c.Value)
	}
	if c.Decision != Fail {
		t.Errorf("got %s (%s), want fail", c.Decision, c.Reason)
	}
}

// The spacing of the stable's samples is measured on the series that were
// there for the whole window: istioSeries is sampled every 15 s.
func TestScrapeSpacing(t *testing.T) {
	a := &Analyzer{Querier: newEngineQuerier(t, istioSeries)}
	got, ok, err := a.ScrapeSpacing(context.Background(), shop, tenMin)
	if err != nil || !ok || got != 15*time.Second {
		t.Errorf("spacing %s %v %v, want 15s", got, ok, err)
	}
	// Younger than the window: nothing to measure.
	if _, ok, err := a.ScrapeSpacing(context.Background(), shop, time.Unix(60, 0)); ok || err != nil {
		t.Errorf("at 60 s: ok %v, err %v; want nothing measured", ok, err)
	}
	// A stable pod removed a minute ago has few samples in the window: it
	// does not make the spacing read wider.
	gone := &Analyzer{Querier: newEngineQuerier(t, istioSeries+
		"\tistio_requests_total{reporter=\"destination\",destination_workload_namespace=\"shop\",destination_workload=\"user\",response_code=\"200\",pod=\"old\"} 0+20x35 stale\n")}
	if got, ok, err := gone.ScrapeSpacing(context.Background(), shop, tenMin); err != nil || !ok || got != 15*time.Second {
		t.Errorf("with a pod gone: spacing %s %v %v, want 15s", got, ok, err)
	}
	if msg := SpacingProblem(20*time.Second, 15*time.Second); !contains(msg, "set it to 30s or more") {
		t.Errorf("20s against 15s: %q", msg)
	}
	if msg := SpacingProblem(30*time.Second, 15*time.Second); msg != "" {
		t.Errorf("30s against 15s: %q", msg)
	}
}
