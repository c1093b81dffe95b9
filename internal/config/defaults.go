package config

import (
	"fmt"
	"time"

	"github.com/msctl/msctl/internal/analysis"
)

// Defaults for keys the project file leaves out.
const (
	DefaultRegistry       = "localhost:5000"
	DefaultPrometheus     = "http://prometheus.istio-system.svc:9090"
	DefaultHTTPPort       = 8080
	DefaultGRPCPort       = 9090
	DefaultAdminPort      = 8081
	DefaultReplicas       = 2
	DefaultCanaryInterval = Duration(time.Minute)
	DefaultMaxP95Latency  = Duration(500 * time.Millisecond)
	DefaultMinSuccessRate = 99.0
	DefaultMaxFailed      = 2
	DefaultRouteTimeout   = Duration(10 * time.Second)
	DefaultScrape         = ScrapePlaintext

	// canary.analysis and canary.metrics.
	DefaultDecision        = analysis.DecisionSequential
	DefaultConfidence      = 0.99
	DefaultMinRequests     = 20
	DefaultMaxNoDataChecks = 5
	DefaultMaxErrorChecks  = 5
	DefaultOnInconclusive  = InconclusiveRollback
	DefaultOnNoData        = analysis.OnNoDataHold
	// DefaultQuantile is request-duration's quantile: Flagger's P99.
	DefaultQuantile = 0.99
)

// DefaultSteps returns the canary steps used when the file gives none:
// weights 10, 25, 50 and 100.
func DefaultSteps() []Step { return []Step{{Weight: 10}, {Weight: 25}, {Weight: 50}, {Weight: 100}} }

// applyDefaults fills what the file (and overrides) left unset. A key that
// was written, even as 0 or "", is left alone: set reports which.
func applyDefaults(p *Project, set func(path string) bool) {
	str := func(path string, field *string, def string) {
		if *field == "" && !set(path) {
			*field = def
		}
	}
	num := func(path string, field *int, def int) {
		if *field == 0 && !set(path) {
			*field = def
		}
	}
	if p.APIVersion == "" && !set("apiVersion") {
		p.APIVersion = APIVersion
	}
	if p.Kind == "" && !set("kind") {
		p.Kind = Kind
	}
	str("namespace", &p.Namespace, p.Name)
	str("registry", &p.Registry, DefaultRegistry)
	str("prometheus.address", &p.Prometheus.Address, DefaultPrometheus)
	str("prometheus.scrape", &p.Prometheus.Scrape, DefaultScrape)
	str("gateway.credentialName", &p.Gateway.CredentialName, p.Name+"-tls")
	if len(p.Canary.Steps) == 0 && !set("canary.steps") {
		p.Canary.Steps = DefaultSteps()
	}
	if p.Canary.Interval == 0 && !set("canary.interval") {
		p.Canary.Interval = DefaultCanaryInterval
	}
	t := &p.Canary.Thresholds
	if t.MinSuccessRate == 0 && !set("canary.thresholds.minSuccessRate") {
		t.MinSuccessRate = DefaultMinSuccessRate
	}
	if t.MaxP95Latency == 0 && !set("canary.thresholds.maxP95Latency") {
		t.MaxP95Latency = DefaultMaxP95Latency
	}
	num("canary.thresholds.maxFailedChecks", &t.MaxFailedChecks, DefaultMaxFailed)
	a := &p.Canary.Analysis
	str("canary.analysis.decision", &a.Decision, DefaultDecision)
	if a.Confidence == 0 && !set("canary.analysis.confidence") {
		a.Confidence = DefaultConfidence
	}
	num("canary.analysis.minRequests", &a.MinRequests, DefaultMinRequests)
	num("canary.analysis.maxNoDataChecks", &a.MaxNoDataChecks, DefaultMaxNoDataChecks)
	num("canary.analysis.maxErrorChecks", &a.MaxErrorChecks, DefaultMaxErrorChecks)
	str("canary.analysis.onInconclusive", &a.OnInconclusive, DefaultOnInconclusive)
	metricDefaults(p.Canary.Metrics, "canary.metrics", set)

	for i := range p.Services {
		s := &p.Services[i]
		at := func(key string) string { return fmt.Sprintf("services[%d].%s", i, key) }
		str(at("path"), &s.Path, "services/"+s.Name)
		num(at("ports.http"), &s.Ports.HTTP, DefaultHTTPPort)
		num(at("ports.grpc"), &s.Ports.GRPC, DefaultGRPCPort)
		num(at("ports.admin"), &s.Ports.Admin, DefaultAdminPort)
		num(at("replicas"), &s.Replicas, DefaultReplicas)
		str(at("resources.requests.cpu"), &s.Resources.Requests.CPU, "50m")
		str(at("resources.requests.memory"), &s.Resources.Requests.Memory, "64Mi")
		str(at("resources.limits.cpu"), &s.Resources.Limits.CPU, "500m")
		str(at("resources.limits.memory"), &s.Resources.Limits.Memory, "256Mi")
		if s.Timeout == 0 && !set(at("timeout")) {
			s.Timeout = DefaultRouteTimeout
		}
		if s.Canary != nil {
			metricDefaults(s.Canary.Metrics, at("canary.metrics"), set)
		}
	}
}

// metricDefaults fills the defaults a metric has wherever it is written.
// minRequests is left alone: 0 inherits the analysis.minRequests that
// applies to the service, which CanaryFor knows.
func metricDefaults(ms []Metric, path string, set func(string) bool) {
	for i := range ms {
		m := &ms[i]
		at := func(key string) string { return fmt.Sprintf("%s[%d].%s", path, i, key) }
		if m.OnNoData == "" && !set(at("onNoData")) {
			m.OnNoData = DefaultOnNoData
		}
		if m.Name == analysis.Duration && m.Query == "" && m.Quantile == 0 && !set(at("quantile")) {
			m.Quantile = DefaultQuantile
		}
	}
}
