package gateway

import (
	"errors"
	"strconv"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/routes"
	"github.com/prometheus/client_golang/prometheus"
)

// Values Istio reports where it knows nothing, and the names of its
// ingress gateway and default cluster, so that queries and dashboards
// written for a cluster select the same series.
const (
	unknown          = "unknown"
	ingressWorkload  = "istio-ingressgateway"
	ingressNamespace = "istio-system"
	clusterID        = "Kubernetes"
	// noTLS is connection_security_policy for plaintext: locally nothing
	// is mutual TLS.
	noTLS = "none"
)

// metrics are istio_requests_total and istio_request_duration_milliseconds,
// recorded as the destination's sidecar would (reporter="destination"), or
// the caller's where no destination's sidecar saw the request.
type metrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "istio_requests_total",
			Help: "Requests through msctl's local gateway, as Istio's sidecars count them.",
		}, analysis.IstioLabels()),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "istio_request_duration_milliseconds",
			Help:    "Duration of requests through msctl's local gateway, in milliseconds.",
			Buckets: analysis.IstioBuckets,
		}, analysis.IstioLabels()),
	}
	if reg == nil {
		return m, nil
	}
	var err error
	if m.requests, err = register(reg, m.requests); err != nil {
		return nil, err
	}
	if m.duration, err = register(reg, m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// register registers c, or returns the collector already registered in
// its place, so that a gateway rebuilt in the same process keeps counting
// on the same series.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}

// source is who sends a listener's requests, as the labels source_*.
type source [8]string

func ingressSource() source {
	return source{ingressWorkload, ingressWorkload, "latest", ingressNamespace, unknown, ingressWorkload, unknown, clusterID}
}

func unknownSource() source {
	return source{unknown, unknown, unknown, unknown, unknown, unknown, unknown, unknown}
}

func serviceSource(service, namespace string) source {
	return source{service, service, "latest", namespace, unknown, service, unknown, clusterID}
}

// destination is a service's stable or canary workload, as the labels
// destination_*.
type destination [11]string

func newDestination(service, namespace string, canary bool) destination {
	workload, version := service, "stable"
	if canary {
		workload, version = service+"-canary", "canary"
	}
	return destination{
		workload, namespace, unknown, service, version,
		service + "." + namespace + ".svc.cluster.local", service, "latest", service, namespace, clusterID,
	}
}

// unreached is what Istio's caller-side sidecar records as the
// destination of a request that found no ready pod of a track's Service:
// only the Service is known. The built-in queries count such requests
// against the track whose Service it is.
func unreached(service, namespace string, canary bool) destination {
	name := service
	if canary {
		name += routes.CanarySuffix
	}
	return destination{
		unknown, unknown, unknown, unknown, unknown,
		name + "." + namespace + ".svc.cluster.local", unknown, unknown, name, namespace, unknown,
	}
}

// Reporters: which sidecar counts a request.
const (
	byDestination = "destination"
	bySource      = "source"
)

// outcome is what became of one request.
type outcome struct {
	grpc       bool
	code       int
	grpcStatus string
	flags      string
	millis     float64
}

func (m *metrics) record(reporter string, src *source, dst *destination, o outcome) {
	protocol := "http"
	if o.grpc {
		protocol = "grpc"
	}
	flags := o.flags
	if flags == "" {
		flags = "-"
	}
	values := make([]string, 0, 25) // analysis.IstioLabels(), in its order
	values = append(values, reporter)
	values = append(values, src[:]...)
	values = append(values, dst[:]...)
	values = append(values, protocol, strconv.Itoa(o.code), o.grpcStatus, flags, noTLS)
	m.requests.WithLabelValues(values...).Inc()
	m.duration.WithLabelValues(values...).Observe(o.millis)
}
