package analysis

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A canary's workload keeps its name from one canary to the next, and so
// its series: the previous canary of user-canary served healthy requests
// until 300s, the new one 20% errors from then on. Samples every 15 s.
const nextCanarySeries = `
load 15s
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",response_code="200"} 0+20x20 416+16x19
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="user-canary",response_code="503"} 0x20 4+4x19
	istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload="user",response_code="200"} 0+20x20 400x19
`

// TestWindowStartsWithTheInterval: a check 30 s into the new canary's
// first interval reads its 30 s, not the minute that reaches back into the
// previous canary's requests.
func TestWindowStartsWithTheInterval(t *testing.T) {
	a := &Analyzer{Querier: newEngineQuerier(t, nextCanarySeries)}
	start, at := time.Unix(300, 0), time.Unix(330, 0)
	m := Metric{Name: SuccessRate, Min: ptr(95), Decision: DecisionThreshold}
	c := a.Check(context.Background(), m, shop, Window{Since: start, From: start, At: at})
	if c.Window != 30*time.Second || !strings.Contains(c.Reason, "success rate 80% (32 of 40 requests)") {
		t.Errorf("window %s: %s: %s", c.Window, c.Decision, c.Reason)
	}
	// A window never reaches past the interval either.
	c = a.Check(context.Background(), m, shop, Window{Since: start, From: time.Unix(0, 0), At: at})
	if c.Window != shop.Interval {
		t.Errorf("window %s, want the interval %s", c.Window, shop.Interval)
	}
}

// TestRelativeCheckAtFullWeight: once the canary takes every request the
// stable has none, and a relative check compares with the stable's last
// interval that had them, and says so.
func TestRelativeCheckAtFullWeight(t *testing.T) {
	a := &Analyzer{Querier: newEngineQuerier(t, nextCanarySeries)}
	m := Metric{Name: SuccessRate, Relative: &Relative{MaxDrop: 25}, Decision: DecisionThreshold}
	at := time.Unix(570, 0)
	c := a.Check(context.Background(), m, shop, Window{Since: time.Unix(300, 0), At: at})
	if c.Decision != NoData || !strings.Contains(c.Reason, "the stable's query gave no data") {
		t.Fatalf("without StableAt: %s: %s", c.Decision, c.Reason)
	}
	c = a.Check(context.Background(), m, shop, Window{Since: time.Unix(300, 0), At: at, StableAt: time.Unix(300, 0)})
	if c.Decision != Pass || !strings.Contains(c.Reason, "the stable's 100% less 25 points, the stable's over its last interval with traffic, to ") || !c.StableAt.Equal(time.Unix(300, 0)) {
		t.Errorf("with StableAt: %s: %s (stable at %s)", c.Decision, c.Reason, c.StableAt)
	}
}

// TestStalledPrometheus: a Prometheus that accepts a query and never
// answers gives an error check within the query timeout, not a driver
// stuck in the query.
func TestStalledPrometheus(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	p, err := NewPrometheus(srv.URL, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &Analyzer{Querier: p, QueryTimeout: 200 * time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := a.Check(ctx, Metric{Name: SuccessRate, Min: ptr(99)}, shop, Window{Since: time.Unix(0, 0), At: tenMin})
	if c.Decision != Error || !strings.Contains(c.Reason, "no answer from Prometheus within 200ms") {
		t.Errorf("got %s: %s", c.Decision, c.Reason)
	}
	if ctx.Err() != nil {
		t.Error("the check outlived its query timeout")
	}
	// The default is a quarter of the interval, at most 30s.
	if got := (&Analyzer{}).queryTimeout(time.Minute); got != 15*time.Second {
		t.Errorf("default timeout for a 1m interval: %s", got)
	}
}
