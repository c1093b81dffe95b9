// Package metrics owns a service's Prometheus registry and the RED metrics
// of its gRPC and HTTP servers. Each process builds its own registry and
// never touches the global default, so tests can run many services in one
// process and a library cannot add series behind our back.
package metrics

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// NewRegistry returns a registry holding build_info{version,commit} and
// the Go runtime and process collectors.
func NewRegistry(version, commit string) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "build_info",
		Help:        "Always 1; labels say which build is running.",
		ConstLabels: prometheus.Labels{"version": version, "commit": commit},
	})
	info.Set(1)
	reg.MustRegister(info,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// Handler serves reg in the OpenMetrics format when asked, which is the
// only format that carries exemplars.
func Handler(reg *prometheus.Registry) http.Handler {
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true, Registry: reg})
}

// Latency buckets from 0.5 ms to 10 s: the services answer in about a
// millisecond when healthy and the canary analysis looks at p99.
var buckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// GRPC counts and times the calls of a gRPC server.
type GRPC struct {
	handled *prometheus.CounterVec
	latency *prometheus.HistogramVec
	// series caches the counter and histogram of each method and code
	// (grpcKey -> *series), so a call does not hash its label values
	// into both vectors again. Methods are the registered ones and codes
	// are 17, so the cache stays small.
	series sync.Map
}

type grpcKey struct {
	method string
	code   codes.Code
}

// series is the counter and histogram of one label set.
type series struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// NewGRPC registers grpc_server_handled_total{method,code} and
// grpc_server_handling_seconds{method,code} on reg.
func NewGRPC(reg prometheus.Registerer) *GRPC {
	m := &GRPC{
		handled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "grpc_server_handled_total",
			Help: "gRPC calls completed, by full method and status code.",
		}, []string{"method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "grpc_server_handling_seconds",
			Help:    "Time to complete a gRPC call, by full method and status code.",
			Buckets: buckets,
		}, []string{"method", "code"}),
	}
	reg.MustRegister(m.handled, m.latency)
	return m
}

func (m *GRPC) observe(ctx context.Context, method string, err error, start time.Time) {
	k := grpcKey{method, status.Code(err)}
	v, ok := m.series.Load(k)
	if !ok {
		code := k.code.String()
		v, _ = m.series.LoadOrStore(k, &series{m.handled.WithLabelValues(method, code), m.latency.WithLabelValues(method, code)})
	}
	s := v.(*series)
	s.count.Inc()
	observe(ctx, s.latency, time.Since(start).Seconds())
}

// Unary records unary calls.
func (m *GRPC) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		resp, err := handler(ctx, req)
		m.observe(ctx, info.FullMethod, err, start)
		return resp, err
	}
}

// Stream records streaming calls when they end.
func (m *GRPC) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		err := handler(srv, ss)
		m.observe(ss.Context(), info.FullMethod, err, start)
		return err
	}
}

// HTTP counts and times the requests of one HTTP server.
type HTTP struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	// series caches label sets (httpKey -> *series); made-up methods all
	// share "other", so the cache is bounded by methods times codes.
	series sync.Map
}

type httpKey struct {
	server, method string
	code           int
}

// NewHTTP registers http_server_requests_total{server,method,code} and
// http_server_request_duration_seconds{server,method,code} on reg. Paths
// are deliberately not a label: ids in them would explode cardinality.
func NewHTTP(reg prometheus.Registerer) *HTTP {
	m := &HTTP{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_server_requests_total",
			Help: "HTTP requests completed, by server, method and status code.",
		}, []string{"server", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by server, method and status code.",
			Buckets: buckets,
		}, []string{"server", "method", "code"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// Observe records one finished request. A method outside the standard
// ones is counted as "other": clients can make methods up, before any
// credential is checked, and each would otherwise be a new series forever.
func (m *HTTP) Observe(ctx context.Context, server, method string, code int, d time.Duration) {
	if !standard(method) {
		method = "other"
	}
	var s *series
	k := httpKey{server, method, code}
	if v, ok := m.series.Load(k); ok {
		s = v.(*series)
	} else {
		c := codeText(code)
		s = &series{m.requests.WithLabelValues(server, method, c), m.latency.WithLabelValues(server, method, c)}
		if code >= 100 && code < 600 {
			m.series.Store(k, s)
		}
	}
	s.count.Inc()
	observe(ctx, s.latency, d.Seconds())
}

func standard(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return true
	}
	return false
}

func codeText(code int) string {
	if code >= 100 && code < 600 {
		return itoa(code)
	}
	return "unknown"
}

func itoa(n int) string {
	return string([]byte{byte('0' + n/100), byte('0' + n/10%10), byte('0' + n%10)})
}

// observe adds the trace id as an exemplar when the call was sampled, so a
// slow bucket in a dashboard links to a trace of it.
func observe(ctx context.Context, o prometheus.Observer, v float64) {
	sc := trace.SpanContextFromContext(ctx)
	if eo, ok := o.(prometheus.ExemplarObserver); ok && sc.IsSampled() {
		eo.ObserveWithExemplar(v, prometheus.Labels{"trace_id": sc.TraceID().String()})
		return
	}
	o.Observe(v)
}
