package promtest

import (
	"fmt"
	"github.com/msctl/msctl/internal/analysis"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// IstioBuckets are the bucket bounds, in milliseconds, of Istio's
// istio_request_duration_milliseconds histogram (Envoy's defaults).
var IstioBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// The requests come from Istio's ingress gateway as installed by istioctl,
// through mutual TLS, in a cluster Istio knows by its default name.
const (
	gatewayWorkload  = "istio-ingressgateway"
	gatewayNamespace = "istio-system"
	gatewayPrincipal = "spiffe://cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
	clusterID        = "Kubernetes"
)

const (
	// generatorTick is how often the generator advances the counters.
	generatorTick = 100 * time.Millisecond
	// defaultP50MS is the latency of a workload that sets none.
	defaultP50MS = 10
	// z99 is the standard normal distribution's 0.99 quantile.
	z99 = 2.3263478740408408
)

// Traffic is what one workload receives from the moment it is set. The zero
// value is no traffic.
type Traffic struct {
	// RPS is the mean number of requests per second.
	RPS float64
	// ErrorRatio is the share of requests that fail, from 0 to 1.
	ErrorRatio float64
	// ErrorCode is the response code of failed requests; 500 when zero.
	ErrorCode int

	// P50MS and P99MS are the median and 99th percentile of a lognormal
	// latency, in milliseconds. P50MS zero means 10 ms; P99MS zero or equal
	// to P50MS gives every request the latency P50MS.
	P50MS, P99MS float64
	// LatencyMS, when set, gives each request's latency in milliseconds in
	// place of P50MS and P99MS. Only the exporter's generator calls it, one
	// call at a time and with the exporter locked: it must not call the
	// exporter.
	LatencyMS func() float64

	// Steady spreads requests evenly over time and fails exactly the share
	// ErrorRatio of them, so that a test's figures do not depend on chance.
	// Otherwise arrivals are Poisson and each request fails with probability
	// ErrorRatio, drawn from the exporter's seeded generator.
	Steady bool

	// Service is the Kubernetes Service in front of the workload: it sets
	// destination_service (its cluster-local host name), _service_name,
	// _app, _canonical_service and the service account in
	// destination_principal. By default it is the workload's name without a
	// "-canary" suffix, as msctl's chart names its Deployments.
	Service string
	// Version is destination_version, the pods' version label: by default
	// "canary" for a workload whose name ends in "-canary", else "stable",
	// the chart's tracks.
	Version string
	// Revision is destination_canonical_revision; by default "latest",
	// Istio's value for pods with no revision label.
	Revision string

	// Unreached is a workload with no ready pod: every request fails with
	// 503 (ErrorRatio and ErrorCode aside) and is recorded as Istio records
	// "no healthy upstream", by the caller's sidecar alone
	// (reporter="source", response_flags UH), under the workload's own
	// Service, which msctl's chart names as the Deployment, with the
	// workload unknown.
	Unreached bool
}

// normalize fills in the defaults of a workload named name and checks the
// figures.
func (tr Traffic) normalize(name string) (Traffic, error) {
	switch {
	case !(tr.RPS >= 0) || math.IsInf(tr.RPS, 0):
		return tr, fmt.Errorf("RPS %v: want a finite number >= 0", tr.RPS)
	case !(tr.ErrorRatio >= 0 && tr.ErrorRatio <= 1):
		return tr, fmt.Errorf("ErrorRatio %v: want 0 to 1", tr.ErrorRatio)
	case tr.ErrorCode != 0 && (tr.ErrorCode < 100 || tr.ErrorCode > 599):
		return tr, fmt.Errorf("ErrorCode %d: want an HTTP status", tr.ErrorCode)
	case !(tr.P50MS >= 0) || math.IsInf(tr.P50MS, 0):
		return tr, fmt.Errorf("P50MS %v: want a finite number >= 0", tr.P50MS)
	case !(tr.P99MS >= 0) || math.IsInf(tr.P99MS, 0):
		return tr, fmt.Errorf("P99MS %v: want a finite number >= 0", tr.P99MS)
	}
	if tr.ErrorCode == 0 {
		tr.ErrorCode = http.StatusInternalServerError
	}
	if tr.Unreached {
		tr.ErrorRatio, tr.ErrorCode = 1, http.StatusServiceUnavailable
	}
	if tr.P50MS == 0 {
		tr.P50MS = defaultP50MS
	}
	if tr.P99MS == 0 {
		tr.P99MS = tr.P50MS
	}
	if tr.P99MS < tr.P50MS {
		return tr, fmt.Errorf("P99MS %v is below P50MS %v", tr.P99MS, tr.P50MS)
	}
	canary := strings.HasSuffix(name, "-canary")
	if tr.Service == "" {
		tr.Service = strings.TrimSuffix(name, "-canary")
	}
	if tr.Version == "" {
		tr.Version = "stable"
		if canary {
			tr.Version = "canary"
		}
	}
	if tr.Revision == "" {
		tr.Revision = "latest"
	}
	return tr, nil
}

// IstioExporter serves Istio's standard request metrics, istio_requests_total
// and istio_request_duration_milliseconds, as the sidecars of a mesh's
// workloads report them (reporter="destination"), on a free loopback port.
// A generator advances the counters every 100 ms in real time according to
// each workload's Traffic; Add advances them at once. Scrapes see every
// workload's counters as of one moment.
//
// Istio creates a series when its first request is counted, so a workload's
// response_code="500" series appears with its first failure; so do these.
type IstioExporter struct {
	server   *httptest.Server // nil in the package's own unit tests
	registry *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	seed     uint64
	now      func() time.Time

	mu        sync.Mutex
	last      time.Time // when the generator last advanced the counters
	workloads map[workloadKey]*workload

	stop chan struct{}
	done chan struct{}
}

type workloadKey struct{ namespace, name string }

// workload is the state of one destination workload.
type workload struct {
	key     workloadKey
	traffic Traffic // normalized
	sigma   float64 // of the lognormal latency's logarithm
	rng     *rand.Rand

	owedRequests float64 // Steady: requests due but not yet made, below 1
	owedErrors   float64 // Steady: failures due but not yet made, below 1

	requests, errors int
	series           map[int]series // by response code, for the current labels
}

type series struct {
	requests prometheus.Counter
	duration prometheus.Observer
}

// ExporterOption configures NewIstioExporter.
type ExporterOption func(*IstioExporter)

// WithSeed seeds the random arrivals, failures and latencies; the default
// seed is 1. Each workload draws from its own stream, derived from the seed
// and its name, so adding a workload does not change another's draws.
// Arrivals still follow real time, so two runs are alike in distribution,
// not sample for sample.
func WithSeed(seed uint64) ExporterOption {
	return func(e *IstioExporter) { e.seed = seed }
}

// NewIstioExporter starts an exporter serving /metrics on a free loopback
// port, with no workloads yet. It stops when the test ends.
func NewIstioExporter(t testing.TB, opts ...ExporterOption) *IstioExporter {
	t.Helper()
	e := newIstioExporter(time.Now, opts...)
	e.server = httptest.NewServer(e.handler())
	e.stop = make(chan struct{})
	e.done = make(chan struct{})
	go e.generate()
	t.Cleanup(func() {
		close(e.stop)
		<-e.done
		e.server.Close()
	})
	return e
}

// newIstioExporter builds an exporter on the clock now, with no server and
// no generator: the package's unit tests advance it themselves.
func newIstioExporter(now func() time.Time, opts ...ExporterOption) *IstioExporter {
	e := &IstioExporter{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests handled by an Istio proxy (promtest).",
		}, analysis.IstioLabels()),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_request_duration_milliseconds",
			Help:    "Duration of requests in milliseconds (promtest).",
			Buckets: IstioBuckets,
		}, analysis.IstioLabels()),
		seed:      1,
		now:       now,
		last:      now(),
		workloads: map[workloadKey]*workload{},
	}
	for _, opt := range opts {
		opt(e)
	}
	e.registry.MustRegister(e.requests, e.duration)
	return e
}

// handler serves /metrics. It holds mu while it gathers, so that a scrape
// never sees a workload's counter and histogram from different moments.
func (e *IstioExporter) handler() http.Handler {
	metrics := promhttp.HandlerFor(e.registry, promhttp.HandlerOpts{ErrorHandling: promhttp.HTTPErrorOnError})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		defer e.mu.Unlock()
		metrics.ServeHTTP(w, r)
	})
	return mux
}

// Target is the exporter's host:port, for StartPrometheus.
func (e *IstioExporter) Target() string {
	return strings.TrimPrefix(e.server.URL, "http://")
}

// SetTraffic sets what the workload named workload (a Deployment's name) in
// namespace receives from now on; what it received until now follows the
// previous setting. Changing Service, Version or Revision starts new series,
// as relabelled pods would. It panics on figures out of range.
func (e *IstioExporter) SetTraffic(namespace, workload string, tr Traffic) {
	tr, err := tr.normalize(workload)
	if err == nil {
		err = checkWorkload(namespace, workload)
	}
	if err != nil {
		panic(fmt.Sprintf("promtest: SetTraffic(%q, %q): %v", namespace, workload, err))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.advance()
	e.workload(namespace, workload).set(tr)
}

// Add counts requests to the workload at once, errors of them failed (with
// the workload's ErrorCode), each taking latencyMS milliseconds. A workload
// not set before gets the default labels and no traffic. It panics on
// figures out of range.
func (e *IstioExporter) Add(namespace, workload string, requests, errors int, latencyMS float64) {
	err := checkWorkload(namespace, workload)
	switch {
	case err != nil:
	case requests < 0 || errors < 0 || errors > requests:
		err = fmt.Errorf("want 0 <= errors <= requests")
	case !(latencyMS >= 0) || math.IsInf(latencyMS, 0):
		err = fmt.Errorf("latency %v: want a finite number >= 0", latencyMS)
	}
	if err != nil {
		panic(fmt.Sprintf("promtest: Add(%q, %q, %d, %d, %v): %v", namespace, workload, requests, errors, latencyMS, err))
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	w := e.workload(namespace, workload)
	fixed := func() float64 { return latencyMS }
	e.count(w, false, requests-errors, fixed)
	e.count(w, true, errors, fixed)
}

// Counts returns how many requests the workload has received so far, and
// how many of them failed.
func (e *IstioExporter) Counts(namespace, workload string) (requests, errors int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	w, ok := e.workloads[workloadKey{namespace, workload}]
	if !ok {
		return 0, 0
	}
	return w.requests, w.errors
}

func checkWorkload(namespace, workload string) error {
	if namespace == "" || workload == "" {
		return fmt.Errorf("want a namespace and a workload name")
	}
	return nil
}

// generate advances the counters every generatorTick until stop is closed.
func (e *IstioExporter) generate() {
	defer close(e.done)
	tick := time.NewTicker(generatorTick)
	defer tick.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-tick.C:
			e.mu.Lock()
			e.advance()
			e.mu.Unlock()
		}
	}
}

// advance counts what every workload received since the last advance under
// its current Traffic. The caller holds mu.
func (e *IstioExporter) advance() {
	now := e.now()
	elapsed := now.Sub(e.last).Seconds()
	if elapsed <= 0 {
		return
	}
	e.last = now
	for _, w := range e.workloads {
		tr := w.traffic
		if tr.RPS == 0 {
			continue
		}
		var requests, errors int
		if tr.Steady {
			w.owedRequests += tr.RPS * elapsed
			requests = int(w.owedRequests)
			w.owedRequests -= float64(requests)
			w.owedErrors += float64(requests) * tr.ErrorRatio
			errors = int(w.owedErrors)
			w.owedErrors -= float64(errors)
		} else {
			requests = poisson(w.rng, tr.RPS*elapsed)
			for range requests {
				if w.rng.Float64() < tr.ErrorRatio {
					errors++
				}
			}
		}
		e.count(w, false, requests-errors, w.latency)
		e.count(w, true, errors, w.latency)
	}
}

// workload returns the named workload's state, creating it with no traffic.
// The caller holds mu.
func (e *IstioExporter) workload(namespace, name string) *workload {
	key := workloadKey{namespace, name}
	if w, ok := e.workloads[key]; ok {
		return w
	}
	h := fnv.New64a()
	_, _ = h.Write([]byte(namespace + "/" + name))
	w := &workload{key: key, rng: rand.New(rand.NewPCG(e.seed, h.Sum64()))}
	tr, err := Traffic{}.normalize(name)
	if err != nil {
		panic("promtest: the default traffic is invalid: " + err.Error())
	}
	w.set(tr)
	e.workloads[key] = w
	return w
}

// set changes the workload's traffic; the series are looked up again when
// the labels change.
func (w *workload) set(tr Traffic) {
	old := w.traffic
	if w.series == nil || old.Service != tr.Service || old.Version != tr.Version || old.Revision != tr.Revision || old.Unreached != tr.Unreached {
		w.series = map[int]series{}
	}
	w.traffic = tr
	w.sigma = math.Log(tr.P99MS/tr.P50MS) / z99
}

// count adds n requests, answered with 200 or, when failed, with the
// workload's ErrorCode, each with a latency from latency. The caller holds mu.
func (e *IstioExporter) count(w *workload, failed bool, n int, latency func() float64) {
	if n == 0 {
		return
	}
	code := http.StatusOK
	if failed {
		code = w.traffic.ErrorCode
	}
	s, ok := w.series[code]
	if !ok {
		values := w.labelValues(code)
		s = series{requests: e.requests.WithLabelValues(values...), duration: e.duration.WithLabelValues(values...)}
		w.series[code] = s
	}
	s.requests.Add(float64(n))
	for range n {
		s.duration.Observe(max(0, latency()))
	}
	w.requests += n
	if failed {
		w.errors += n
	}
}

// latency draws one request's latency in milliseconds.
func (w *workload) latency() float64 {
	tr := w.traffic
	if tr.LatencyMS != nil {
		return tr.LatencyMS()
	}
	if w.sigma == 0 {
		return tr.P50MS
	}
	return tr.P50MS * math.Exp(w.sigma*w.rng.NormFloat64())
}

// labelValues are the values of analysis.IstioLabels for the workload's requests
// answered with code, as the destination's sidecar reports them, or the
// caller's for an unreached workload.
func (w *workload) labelValues(code int) []string {
	ns, svc, tr := w.key.namespace, w.traffic.Service, w.traffic
	if tr.Unreached {
		const u = "unknown"
		svc := w.key.name
		return []string{
			"source",
			gatewayWorkload, gatewayWorkload, "latest", gatewayNamespace, gatewayPrincipal, gatewayWorkload, u, clusterID,
			u, u, u, u, u, svc + "." + ns + ".svc.cluster.local", u, u, svc, ns, u,
			"http", strconv.Itoa(code), "", "UH", u,
		}
	}
	return []string{
		"destination",
		gatewayWorkload, gatewayWorkload, "latest", gatewayNamespace, gatewayPrincipal, gatewayWorkload, "unknown", clusterID,
		w.key.name, ns, "spiffe://cluster.local/ns/" + ns + "/sa/" + svc, svc, tr.Version,
		svc + "." + ns + ".svc.cluster.local", svc, tr.Revision, svc, ns, clusterID,
		"http", strconv.Itoa(code), "", "-", "mutual_tls",
	}
}

// poisson draws from the Poisson distribution with mean lambda by Knuth's
// method, in parts of mean 16 or less so that exp(-part) stays far from
// underflow; a sum of Poisson draws is a Poisson draw.
func poisson(r *rand.Rand, lambda float64) int {
	n := 0
	for lambda > 0 {
		part := min(lambda, 16)
		lambda -= part
		limit := math.Exp(-part)
		for p := r.Float64(); p > limit; p *= r.Float64() {
			n++
		}
	}
	return n
}
