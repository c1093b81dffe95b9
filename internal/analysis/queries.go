package analysis

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Flagger's queries for Istio (pkg/metrics/observers/istio.go), with the
// same selectors, functions and grouping, so a team moving from Flagger
// reads the same numbers for HTTP. Three differences: a gRPC call that
// failed on the server counts as failed (Envoy records it as response_code
// 200 with its grpc_response_status, so Flagger's rate never sees a gRPC
// service fail); a request that found no ready pod of the track counts as
// failed (only the caller's sidecar records it, reporter="source", under
// the track's Service, which the chart names as its Deployment, and an
// unknown workload; Flagger's rate never sees a canary that cannot be
// reached); and an interval with requests but no successes reads 0, not no
// data.
const (
	successRateTemplate = `(
	sum(
		rate(
			istio_requests_total{
				reporter="destination",
				destination_workload_namespace="{{ namespace }}",
				destination_workload=~"{{ target }}",
				` + goodRequests + `
			}[{{ interval }}]
		)
	)
	or vector(0)
)
/
sum(
	rate(
		istio_requests_total{
			reporter="destination",
			destination_workload_namespace="{{ namespace }}",
			destination_workload=~"{{ target }}"
		}[{{ interval }}]
	)
	or
	rate(
		istio_requests_total{
			` + unreachedSelector + `
		}[{{ interval }}]
	)
)
* 100`

	durationTemplate = `histogram_quantile(
	%s,
	sum(
		rate(
			istio_request_duration_milliseconds_bucket{
				reporter="destination",
				destination_workload_namespace="{{ namespace }}",
				destination_workload=~"{{ target }}"
			}[{{ interval }}]
		)
	) by (le)
)`

	// The selector of the count queries: Flagger's, on one workload.
	istioSelector = `reporter="destination",destination_workload_namespace="{{ namespace }}",destination_workload=~"{{ target }}"`

	// unreachedSelector selects the requests for the track's Service that
	// no pod of it received, as the caller's sidecar records them: no
	// healthy upstream (UH), or no connection to one (UF, URX after
	// retries). Only those: a request a pod saw is counted by the pod's
	// sidecar, whatever the caller's knows of it.
	unreachedSelector = `reporter="source",destination_service_namespace="{{ namespace }}",destination_service_name=~"{{ target }}",destination_workload="unknown",response_flags=~".*(UH|UF|URX).*"`

	// goodRequests selects the requests that did not fail on the server:
	// no 5xx, and no gRPC status that means a server error (Unknown,
	// DeadlineExceeded, Unimplemented, Internal, Unavailable, DataLoss).
	// An HTTP request has no grpc_response_status, which the second
	// matcher lets through.
	goodRequests = `response_code!~"5.*",grpc_response_status!~"2|4|12|13|14|15"`
)

// IstioBuckets are the bounds, in milliseconds, of Istio's default
// istio_request_duration_milliseconds histogram. The sequential latency
// test counts slow requests from a bucket, so its threshold must be one.
var IstioBuckets = []float64{0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000}

// IstioLabels are the labels of Istio's standard request metrics, in the
// order Istio's stats filter sets them: what the built-in queries select
// on, and so what the local gateway and the test exporter record.
func IstioLabels() []string {
	return []string{
		"reporter",
		"source_workload",
		"source_canonical_service",
		"source_canonical_revision",
		"source_workload_namespace",
		"source_principal",
		"source_app",
		"source_version",
		"source_cluster",
		"destination_workload",
		"destination_workload_namespace",
		"destination_principal",
		"destination_app",
		"destination_version",
		"destination_service",
		"destination_canonical_service",
		"destination_canonical_revision",
		"destination_service_name",
		"destination_service_namespace",
		"destination_cluster",
		"request_protocol",
		"response_code",
		"grpc_response_status",
		"response_flags",
		"connection_security_policy",
	}
}

// valueTemplate is the template of m's value over the interval.
func valueTemplate(m Metric) string {
	switch {
	case !m.builtin():
		return m.Query
	case m.isLatency():
		return fmt.Sprintf(durationTemplate, strconv.FormatFloat(m.quantile(), 'f', -1, 64))
	default:
		return successRateTemplate
	}
}

// countTemplates are the templates of the total and the bad requests of m
// (failed on the server, or slower than m's Max) over {{ interval }}. A
// duration without Max (a relative one) has no bad template.
func countTemplates(m Metric) (total, bad string) {
	if m.isLatency() {
		total = sumIncrease(`istio_request_duration_milliseconds_count{` + istioSelector + `}`)
		if m.Max == nil {
			return total, ""
		}
		// Slow requests are all of them less those in the bucket at the
		// threshold: a histogram can say nothing finer.
		bad = total + ` - ` + sumIncrease(`istio_request_duration_milliseconds_bucket{`+istioSelector+`,le=~"`+leRegexp(*m.Max)+`"}`)
		return total, bad
	}
	total = sumIncrease(`istio_requests_total{`+istioSelector+`}`, `istio_requests_total{`+unreachedSelector+`}`)
	// A selector cannot say "5xx or a gRPC server error", so the bad
	// requests are those that were not good: every unreached one.
	bad = total + ` - (` + sumIncrease(`istio_requests_total{`+istioSelector+`,`+goodRequests+`}`) + ` or vector(0))`
	return total, bad
}

// sumIncrease is the increase over {{ interval }} of the counters sel
// selects, summed, counting every request. increase() alone does not: it
// starts from a series' first sample, and Istio creates a series with the
// first request of each response code and caller, so a series born in the
// window loses the requests its first sample holds. On thin traffic that
// is most of a canary's failures. So each series is counted by what it
// is, in three disjoint sets:
//   - there when the window opened, no reset in it: its last value less
//     its value then, exactly, whether or not it is still there now;
//   - there when the window opened, reset in it or across its start (its
//     process restarted):
//     increase(), which handles resets;
//   - born in the window: its highest value, all of it this window's.
//
// Several selectors are counted together; their series must differ in a
// label. With no series at all the sum is empty.
func sumIncrease(sels ...string) string {
	const w = `{{ interval }}`
	var sets []string
	for _, sel := range sels {
		rng := sel + `[` + w + `]`
		// The last sample before the window, skipping a stale marker that
		// a failed scrape left, which would make the series look born.
		then := `last_over_time(` + sel + `[5m] offset ` + w + `)`
		// A reset shows in the window, or across its start (the first
		// sample in it already below the value before).
		reset := `((resets(` + rng + `) > 0) or (min_over_time(` + rng + `) < ` + then + `))`
		sets = append(sets,
			`((last_over_time(`+rng+`) - `+then+`) unless `+reset+`)`,
			`(increase(`+rng+`) and `+reset+` and `+then+`)`,
			`(max_over_time(`+rng+`) unless `+then+`)`)
	}
	return "sum(\n\t" + strings.Join(sets, "\n\tor ") + "\n)"
}

// leRegexp matches the le label of the bucket at bound however it was
// written: Prometheus 3 stores 500 as "500.0", Prometheus 2 kept the
// exporter's "500", and large bounds may read "1.8e+06".
func leRegexp(bound float64) string {
	forms := []string{
		strconv.FormatFloat(bound, 'f', -1, 64),
		strconv.FormatFloat(bound, 'g', -1, 64),
	}
	if bound == math.Trunc(bound) {
		forms = append(forms, strconv.FormatFloat(bound, 'f', 1, 64))
	}
	seen := map[string]bool{}
	var alts []string
	for _, f := range forms {
		if !seen[f] {
			seen[f] = true
			// Backslashes doubled: the regexp sits in a PromQL string.
			alts = append(alts, strings.ReplaceAll(regexp.QuoteMeta(f), `\`, `\\`))
		}
	}
	return strings.Join(alts, "|")
}

// isIstioBucket reports whether v is a bound of Istio's default buckets.
func isIstioBucket(v float64) bool {
	for _, b := range IstioBuckets {
		if v == b {
			return true
		}
	}
	return false
}

// elapsedWindow is the range of a count since start, in whole seconds as
// PromQL writes it.
func elapsedWindow(start, now time.Time) time.Duration {
	return now.Sub(start).Truncate(time.Second)
}
