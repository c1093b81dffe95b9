package analysis

import (
	"encoding/json"
	"time"
)

// Built-in metric names. Their queries are Flagger's, on Istio's standard
// metrics, so a team moving from Flagger keeps its numbers.
const (
	// SuccessRate is the percentage of non-5xx responses; its threshold is
	// Min (msctl.yaml's minSuccessRate).
	SuccessRate = "request-success-rate"
	// Duration is the P99 request duration in milliseconds; its threshold
	// is Max.
	Duration = "request-duration"
	// DurationP95 is the P95 request duration in milliseconds through the
	// same histogram; its threshold is Max (msctl.yaml's maxP95Latency).
	DurationP95 = "request-duration-p95"
)

// Decision rules a metric can use.
const (
	// DecisionSequential is the default for the built-in metrics: an
	// anytime-valid sequential test on request and error counts, evaluated
	// as often as the driver likes; a fail is final.
	DecisionSequential = "sequential"
	// DecisionThreshold is Flagger's rule: each interval, the value against
	// the threshold; the driver counts fails against maxFailedChecks. The
	// default, and the only rule, for custom queries and relative latency.
	DecisionThreshold = "threshold"
)

// What a check decides when it has no data.
const (
	// OnNoDataHold keeps the weight where it is (the default).
	OnNoDataHold = "hold"
	OnNoDataFail = "fail"
	OnNoDataPass = "pass"
)

// Metric is one check of a canary, as msctl.yaml's canary.metrics lists it.
type Metric struct {
	// Name is a built-in metric's name, or the custom metric's own name.
	Name string `json:"name"`
	// Query is a custom metric's PromQL template, with {{ namespace }},
	// {{ service }}, {{ target }} (the canary workload), {{ stable }} and
	// {{ interval }}; empty for a built-in metric.
	Query string `json:"query,omitempty"`
	// Min and Max bound the value; a built-in success rate takes Min, a
	// built-in duration takes Max, a custom metric either or both.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Relative, when set, compares the canary with the stable in the same
	// window instead of with Min or Max (built-in metrics only).
	Relative *Relative `json:"relative,omitempty"`
	// Decision is DecisionSequential or DecisionThreshold; empty picks the
	// sequential test where the metric has counts, else the threshold rule.
	Decision string `json:"decision,omitempty"`
	// OnNoData is OnNoDataHold (default), OnNoDataFail or OnNoDataPass.
	OnNoData string `json:"onNoData,omitempty"`
	// MinRequests turns a window with fewer canary requests into no-data
	// (built-in metrics only: a custom query has no request count).
	MinRequests int `json:"minRequests,omitempty"`
}

// Relative bounds the canary by the stable, in msctl.yaml's words: one of
// its fields is set.
type Relative struct {
	// MaxDrop is how many percentage points the canary's success rate may
	// be below the stable's (request-success-rate).
	MaxDrop float64 `json:"maxDrop,omitempty"`
	// MaxRatio is how many times the stable's duration quantile the
	// canary's may be (request-duration, request-duration-p95), e.g. 1.2.
	MaxRatio float64 `json:"maxRatio,omitempty"`
}

// UnmarshalJSON also reads maxPointsBelow, MaxDrop's name in canary states
// written before the analysis used msctl.yaml's.
func (r *Relative) UnmarshalJSON(b []byte) error {
	type plain Relative
	var v struct {
		plain
		Old *float64 `json:"maxPointsBelow"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Relative(v.plain)
	if v.Old != nil && r.MaxDrop == 0 {
		r.MaxDrop = *v.Old
	}
	return nil
}

// Target names the workloads a metric is evaluated on.
type Target struct {
	Namespace string
	Service   string
	// Canary and Stable are the workloads' names, as Istio reports them in
	// destination_workload.
	Canary, Stable string
	// Interval is the window of a point estimate, Flagger's interval.
	Interval time.Duration
}

// builtin reports whether m uses one of the built-in queries.
func (m Metric) builtin() bool { return m.Query == "" }

// isLatency reports whether m is a built-in duration metric.
func (m Metric) isLatency() bool { return m.Name == Duration || m.Name == DurationP95 }

// quantile is the built-in duration metric's quantile.
func (m Metric) quantile() float64 {
	if m.Name == DurationP95 {
		return 0.95
	}
	return 0.99
}

// Rule is the decision rule m is judged by: its Decision, or the
// sequential test where m has counts for it and the threshold rule where
// it does not.
func (m Metric) Rule() string { return m.decision() }

func (m Metric) decision() string {
	if m.Decision != "" {
		return m.Decision
	}
	if m.sequentialPossible() {
		return DecisionSequential
	}
	return DecisionThreshold
}

// sequentialPossible reports whether m has the counts the sequential test
// needs: a built-in metric that is not a relative latency.
func (m Metric) sequentialPossible() bool {
	return m.builtin() && !(m.isLatency() && m.Relative != nil)
}

func (m Metric) onNoData() string {
	if m.OnNoData == "" {
		return OnNoDataHold
	}
	return m.OnNoData
}
