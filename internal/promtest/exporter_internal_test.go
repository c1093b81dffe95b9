package promtest

import (
	"io"
	"math"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fakeClock is the exporter's clock in tests that advance it by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time { return c.t }

func newFakeExporter(opts ...ExporterOption) (*IstioExporter, *fakeClock) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	return newIstioExporter(clock.now, opts...), clock
}

// run advances the exporter by d in generator ticks.
func run(e *IstioExporter, clock *fakeClock, d time.Duration) {
	for end := clock.t.Add(d); clock.t.Before(end); {
		clock.t = clock.t.Add(generatorTick)
		e.mu.Lock()
		e.advance()
		e.mu.Unlock()
	}
}

// scrape reads the exporter's /metrics as Prometheus would, and returns
// the samples by metric name.
func scrape(t *testing.T, e *IstioExporter) map[string][]sample {
	t.Helper()
	resp, err := http.Get(e.server.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s %v\n%s", resp.Status, err, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	out := map[string][]sample{}
	for name, mf := range families {
		for _, m := range mf.GetMetric() {
			s := sample{labels: map[string]string{}}
			for _, lp := range m.GetLabel() {
				s.labels[lp.GetName()] = lp.GetValue()
			}
			if c := m.GetCounter(); c != nil {
				s.value = c.GetValue()
			}
			if h := m.GetHistogram(); h != nil {
				s.value = float64(h.GetSampleCount())
				s.sum = h.GetSampleSum()
				for _, b := range h.GetBucket() {
					s.bounds = append(s.bounds, b.GetUpperBound())
					s.cumulative = append(s.cumulative, b.GetCumulativeCount())
				}
			}
			out[name] = append(out[name], s)
		}
	}
	return out
}

type sample struct {
	labels     map[string]string
	value      float64 // a counter's value or a histogram's count
	sum        float64
	bounds     []float64
	cumulative []uint64
}

// find returns the series of workload's requests answered with code.
func find(t *testing.T, samples []sample, workload, code string) sample {
	t.Helper()
	for _, s := range samples {
		if s.labels["destination_workload"] == workload && s.labels["response_code"] == code {
			return s
		}
	}
	t.Fatalf("no series of %s with response_code=%q in %v", workload, code, samples)
	return sample{}
}

// The exposition must carry Istio's label names and the values a sidecar in
// front of msctl's chart would report, so that Flagger's queries and msctl's
// built-in ones match it unchanged.
func TestExporterServesIstioLabels(t *testing.T) {
	e := NewIstioExporter(t)
	e.Add("shop", "user-canary", 10, 2, 42)
	e.Add("shop", "user", 5, 0, 3)

	metrics := scrape(t, e)
	requests := metrics["istio_requests_total"]
	if len(requests) != 3 {
		t.Fatalf("istio_requests_total has %d series, want 3 (canary 200 and 500, stable 200): %v", len(requests), requests)
	}
	ok := find(t, requests, "user-canary", "200")
	want := map[string]string{
		"reporter":                       "destination",
		"source_workload":                "istio-ingressgateway",
		"source_canonical_service":       "istio-ingressgateway",
		"source_canonical_revision":      "latest",
		"source_workload_namespace":      "istio-system",
		"source_principal":               "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account",
		"source_app":                     "istio-ingressgateway",
		"source_version":                 "unknown",
		"source_cluster":                 "Kubernetes",
		"destination_workload":           "user-canary",
		"destination_workload_namespace": "shop",
		"destination_principal":          "spiffe://cluster.local/ns/shop/sa/user",
		"destination_app":                "user",
		"destination_version":            "canary",
		"destination_service":            "user.shop.svc.cluster.local",
		"destination_canonical_service":  "user",
		"destination_canonical_revision": "latest",
		"destination_service_name":       "user",
		"destination_service_namespace":  "shop",
		"destination_cluster":            "Kubernetes",
		"request_protocol":               "http",
		"response_code":                  "200",
		"grpc_response_status":           "",
		"response_flags":                 "-",
		"connection_security_policy":     "mutual_tls",
	}
	if stable := find(t, requests, "user", "200"); stable.labels["destination_version"] != "stable" || stable.labels["destination_service_name"] != "user" {
		t.Errorf("stable series: version %q, service %q; want stable, user", stable.labels["destination_version"], stable.labels["destination_service_name"])
	}
	// grpc_response_status is exposed empty for HTTP, as Envoy does;
	// Prometheus drops empty labels when it stores a sample.
	for name, value := range want {
		if got, present := ok.labels[name]; got != value || !present {
			t.Errorf("label %s = %q (present %v), want %q", name, got, present, value)
		}
	}
	for name := range ok.labels {
		if _, expected := want[name]; !expected {
			t.Errorf("unexpected label %s", name)
		}
	}
	if ok.value != 8 {
		t.Errorf("canary 200s = %v, want 8", ok.value)
	}
	if failed := find(t, requests, "user-canary", "500"); failed.value != 2 {
		t.Errorf("canary 500s = %v, want 2", failed.value)
	}

	canary200 := find(t, metrics["istio_request_duration_milliseconds"], "user-canary", "200")
	if !slices.Equal(canary200.bounds, append(slices.Clone(IstioBuckets), math.Inf(1))) {
		t.Fatalf("buckets %v, want Istio's %v", canary200.bounds, IstioBuckets)
	}
	if canary200.value != 8 || canary200.sum != 8*42 {
		t.Errorf("histogram count %v sum %v, want 8 and %v", canary200.value, canary200.sum, 8*42)
	}
	for i, le := range canary200.bounds {
		want := uint64(0)
		if le >= 42 {
			want = 8
		}
		if canary200.cumulative[i] != want {
			t.Errorf("bucket le=%v holds %d, want %d", le, canary200.cumulative[i], want)
		}
	}
	if req, errs := e.Counts("shop", "user-canary"); req != 10 || errs != 2 {
		t.Errorf("Counts = %d, %d; want 10, 2", req, errs)
	}
}

func TestSteadyTrafficIsExact(t *testing.T) {
	e, clock := newFakeExporter()
	e.SetTraffic("shop", "user-canary", Traffic{RPS: 10, ErrorRatio: 0.2, Steady: true})
	run(e, clock, 10*time.Second)
	if req, errs := e.Counts("shop", "user-canary"); req != 100 || errs != 20 {
		t.Fatalf("after 10 s at 10 rps with 20%% errors: %d requests, %d errors; want 100, 20", req, errs)
	}

	// A change mid-tick applies from that moment: the 50 ms before it count
	// at the old rate, nothing after it.
	clock.t = clock.t.Add(50 * time.Millisecond)
	e.SetTraffic("shop", "user-canary", Traffic{Steady: true})
	run(e, clock, 5*time.Second)
	if req, _ := e.Counts("shop", "user-canary"); req != 100 {
		t.Fatalf("after the traffic stopped: %d requests, want 100 (half a request was owed)", req)
	}
}

func TestPoissonTrafficMatchesItsSetting(t *testing.T) {
	e, clock := newFakeExporter(WithSeed(7))
	e.SetTraffic("shop", "user", Traffic{RPS: 20})
	e.SetTraffic("shop", "user-canary", Traffic{RPS: 5, ErrorRatio: 0.2})
	run(e, clock, 1000*time.Second)

	tests := []struct {
		workload   string
		rps, ratio float64
	}{
		{"user", 20, 0},
		{"user-canary", 5, 0.2},
	}
	for _, tt := range tests {
		req, errs := e.Counts("shop", tt.workload)
		mean := tt.rps * 1000
		// Four standard deviations, of the count and of the error ratio.
		if math.Abs(float64(req)-mean) > 4*math.Sqrt(mean) {
			t.Errorf("%s: %d requests in 1000 s, want about %v", tt.workload, req, mean)
		}
		ratio := float64(errs) / float64(req)
		if sd := math.Sqrt(tt.ratio * (1 - tt.ratio) / float64(req)); math.Abs(ratio-tt.ratio) > 4*sd {
			t.Errorf("%s: error ratio %.4f, want about %v", tt.workload, ratio, tt.ratio)
		}
	}

	// Same seed, same ticks: the same draws.
	again, clock2 := newFakeExporter(WithSeed(7))
	again.SetTraffic("shop", "user-canary", Traffic{RPS: 5, ErrorRatio: 0.2})
	run(again, clock2, 1000*time.Second)
	r1, e1 := e.Counts("shop", "user-canary")
	r2, e2 := again.Counts("shop", "user-canary")
	if r1 != r2 || e1 != e2 {
		t.Errorf("seed 7 twice: %d/%d and %d/%d; want the same (a workload's draws must not depend on the others)", r1, e1, r2, e2)
	}
}

func TestPoissonMoments(t *testing.T) {
	e, _ := newFakeExporter()
	w := e.workload("ns", "w")
	for _, lambda := range []float64{0.3, 2, 45} {
		const n = 20000
		var sum, sumSq float64
		for range n {
			k := float64(poisson(w.rng, lambda))
			sum += k
			sumSq += k * k
		}
		mean := sum / n
		variance := sumSq/n - mean*mean
		if math.Abs(mean-lambda) > 4*math.Sqrt(lambda/n) {
			t.Errorf("lambda %v: mean %v", lambda, mean)
		}
		if math.Abs(variance-lambda)/lambda > 0.1 {
			t.Errorf("lambda %v: variance %v", lambda, variance)
		}
	}
}

func TestLatencyQuantiles(t *testing.T) {
	e, _ := newFakeExporter()
	e.SetTraffic("shop", "user", Traffic{P50MS: 40, P99MS: 400})
	w := e.workload("shop", "user")
	draws := make([]float64, 100000)
	for i := range draws {
		draws[i] = w.latency()
	}
	slices.Sort(draws)
	p50, p99 := draws[len(draws)/2], draws[len(draws)*99/100]
	if math.Abs(p50-40)/40 > 0.03 || math.Abs(p99-400)/400 > 0.06 {
		t.Errorf("P50 %.1f ms, P99 %.1f ms; want about 40 and 400", p50, p99)
	}

	e.SetTraffic("shop", "user", Traffic{P50MS: 25})
	if got := w.latency(); got != 25 {
		t.Errorf("P50MS alone: latency %v, want exactly 25", got)
	}
	e.SetTraffic("shop", "user", Traffic{})
	if got := w.latency(); got != defaultP50MS {
		t.Errorf("no latency set: %v, want %v", got, defaultP50MS)
	}
}

// Changing the labels of a workload starts new series; the old ones keep
// their last values, as a relabelled Deployment's old pods' series would.
func TestRelabelStartsNewSeries(t *testing.T) {
	e := NewIstioExporter(t)
	e.Add("shop", "user", 3, 0, 1)
	e.SetTraffic("shop", "user", Traffic{Version: "v2", Revision: "2.0.1"})
	e.Add("shop", "user", 4, 0, 1)
	got := map[string]float64{}
	for _, s := range scrape(t, e)["istio_requests_total"] {
		got[s.labels["destination_version"]+"/"+s.labels["destination_canonical_revision"]] = s.value
	}
	want := map[string]float64{"stable/latest": 3, "v2/2.0.1": 4}
	if len(got) != len(want) || got["stable/latest"] != 3 || got["v2/2.0.1"] != 4 {
		t.Errorf("series by version/revision %v, want %v", got, want)
	}
}

func TestBadFiguresPanic(t *testing.T) {
	tests := []struct {
		name string
		call func(e *IstioExporter)
		want string
	}{
		{"negative rate", func(e *IstioExporter) { e.SetTraffic("ns", "w", Traffic{RPS: -1}) }, "RPS -1"},
		{"NaN rate", func(e *IstioExporter) { e.SetTraffic("ns", "w", Traffic{RPS: math.NaN()}) }, "RPS NaN"},
		{"error ratio above 1", func(e *IstioExporter) { e.SetTraffic("ns", "w", Traffic{ErrorRatio: 1.5}) }, "ErrorRatio 1.5"},
		{"P99 below P50", func(e *IstioExporter) { e.SetTraffic("ns", "w", Traffic{P50MS: 50, P99MS: 10}) }, "below P50MS"},
		{"bad error code", func(e *IstioExporter) { e.SetTraffic("ns", "w", Traffic{ErrorCode: 1000}) }, "ErrorCode 1000"},
		{"no namespace", func(e *IstioExporter) { e.SetTraffic("", "w", Traffic{}) }, "namespace"},
		{"more errors than requests", func(e *IstioExporter) { e.Add("ns", "w", 1, 2, 5) }, "errors <= requests"},
		{"negative latency", func(e *IstioExporter) { e.Add("ns", "w", 1, 0, -5) }, "latency -5"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, _ := newFakeExporter()
			defer func() {
				msg, _ := recover().(string)
				if !strings.Contains(msg, tt.want) {
					t.Errorf("panic %q, want one naming %q", msg, tt.want)
				}
			}()
			tt.call(e)
		})
	}
}

func TestErrorCode(t *testing.T) {
	e := NewIstioExporter(t)
	e.SetTraffic("shop", "user-canary", Traffic{ErrorCode: 503})
	e.Add("shop", "user-canary", 4, 1, 1)
	requests := scrape(t, e)["istio_requests_total"]
	if s := find(t, requests, "user-canary", "503"); s.value != 1 {
		t.Errorf("503s = %v, want 1", s.value)
	}
	if _, errs := e.Counts("shop", "user-canary"); errs != 1 {
		t.Errorf("Counts errors = %d, want 1", errs)
	}
}
