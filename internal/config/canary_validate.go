package config

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/analysis"
)

// validateQuery checks a custom metric's PromQL template with Prometheus's
// own parser, placeholders filled with sample values; internal/analysis owns
// the templates and the parser. Its error is one line, positioned in the
// template: "1:17: parse error: ...".
var validateQuery = func(query string) error {
	// analysis exports Validate(Metric). A custom metric with a bound and
	// nothing else set can fail only on its query, so every error it
	// returns here is the query's.
	bound := 0.0
	return analysis.Validate(analysis.Metric{Name: "query", Query: query, Max: &bound})
}

// metricName is what a metric may be called: it appears in events, JUnit
// test cases and explain's output.
var metricName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)

// validateCanaries checks the project's canary block, complete after
// defaults, and the keys each service's own block sets.
func validateCanaries(p *Project, ps *problems) {
	c := &p.Canary
	steps := c.Steps
	if steps == nil {
		steps = []Step{} // written as null: no steps
	}
	validateCanaryBlock(ps, "canary", &CanaryOverride{
		Steps:    steps,
		Interval: &c.Interval,
		Thresholds: &ThresholdsOverride{
			MinSuccessRate:  &c.Thresholds.MinSuccessRate,
			MaxP95Latency:   &c.Thresholds.MaxP95Latency,
			MaxFailedChecks: &c.Thresholds.MaxFailedChecks,
		},
		Metrics: c.Metrics,
		Analysis: &AnalysisOverride{
			Decision:        &c.Analysis.Decision,
			Confidence:      &c.Analysis.Confidence,
			MinRequests:     &c.Analysis.MinRequests,
			MaxNoDataChecks: &c.Analysis.MaxNoDataChecks,
			MaxErrorChecks:  &c.Analysis.MaxErrorChecks,
			OnInconclusive:  &c.Analysis.OnInconclusive,
		},
	}, "")
	for i, s := range p.Services {
		if s.Canary == nil {
			continue
		}
		inherited := ""
		if len(p.Canary.Metrics) > 0 {
			inherited = "canary.metrics"
		}
		validateCanaryBlock(ps, fmt.Sprintf("services[%d].canary", i), s.Canary, inherited)
	}
}

// validateCanaryBlock checks the keys o sets. inheritedMetrics names the
// metrics the block inherits, if any: its thresholds then bound nothing.
func validateCanaryBlock(ps *problems, path string, o *CanaryOverride, inheritedMetrics string) {
	at := func(key string) string { return path + "." + key }
	if o.Steps != nil {
		validateSteps(ps, at("steps"), o.Steps)
	}
	if o.Interval != nil && *o.Interval < Duration(time.Second) {
		ps.at(at("interval"), "%s is shorter than 1s", *o.Interval)
	}
	metricsFrom := inheritedMetrics
	if o.Metrics != nil {
		if len(o.Metrics) == 0 {
			ps.at(at("metrics"), "lists no metrics; leave the key out for the built-in metrics at the thresholds")
		} else {
			metricsFrom = at("metrics")
			validateMetrics(ps, at("metrics"), o.Metrics)
		}
	}
	if t := o.Thresholds; t != nil {
		if v := t.MinSuccessRate; v != nil {
			successRateBound(ps, at("thresholds.minSuccessRate"), *v)
		}
		if v := t.MaxP95Latency; v != nil && *v <= 0 {
			ps.at(at("thresholds.maxP95Latency"), "must be positive, got %s", *v)
		}
		if v := t.MaxFailedChecks; v != nil && *v < 1 {
			ps.at(at("thresholds.maxFailedChecks"), "must be at least 1, got %d", *v)
		}
		// A bound that metrics supersede would be silently ignored.
		for _, b := range []struct{ key, metric string }{
			{"minSuccessRate", "min of " + analysis.SuccessRate},
			{"maxP95Latency", "max of " + analysis.Duration + " with quantile 0.95"},
		} {
			key := at("thresholds." + b.key)
			if metricsFrom != "" && ps.written(key) {
				ps.at(key, "has no effect while %s lists the metrics: give it as the %s there", metricsFrom, b.metric)
			}
		}
	}
	if a := o.Analysis; a != nil {
		if v := a.Decision; v != nil && *v != analysis.DecisionSequential && *v != analysis.DecisionThreshold {
			ps.at(at("analysis.decision"), "%q is not %s or %s", *v, analysis.DecisionSequential, analysis.DecisionThreshold)
		}
		if v := a.Confidence; v != nil && !(*v > 0.5 && *v <= 0.9999) {
			ps.at(at("analysis.confidence"), "%g is outside (0.5, 0.9999]", *v)
		}
		if v := a.MinRequests; v != nil && *v < 0 {
			ps.at(at("analysis.minRequests"), "must not be negative, got %d", *v)
		}
		if v := a.MaxNoDataChecks; v != nil && *v < 1 {
			ps.at(at("analysis.maxNoDataChecks"), "must be at least 1, got %d", *v)
		}
		if v := a.MaxErrorChecks; v != nil && *v < 1 {
			ps.at(at("analysis.maxErrorChecks"), "must be at least 1, got %d", *v)
		}
		if v := a.OnInconclusive; v != nil && *v != InconclusiveRollback && *v != InconclusiveKeep {
			ps.at(at("analysis.onInconclusive"), "%q is not %s or %s", *v, InconclusiveRollback, InconclusiveKeep)
		}
	}
}

// validateSteps checks a canary's plan: one kind per step, values in
// range, weights rising to 100, and A/B and mirror steps while the stable
// still takes all the traffic they leave.
func validateSteps(ps *problems, path string, steps []Step) {
	if len(steps) == 0 {
		ps.at(path, "needs at least one step")
		return
	}
	lastWeight, lastAt, lastInRange := 0, "", false
	for i, s := range steps {
		at := fmt.Sprintf("%s[%d]", path, i)
		key := func(k string) string { return at + "." + k }
		var kinds []StepKind
		for _, k := range []struct {
			name StepKind
			set  bool
		}{
			{StepWeight, s.Weight != 0}, {StepPause, s.Pause != nil}, {StepMatch, s.Match != nil}, {StepMirror, s.Mirror != 0},
		} {
			if k.set || ps.written(key(string(k.name))) {
				kinds = append(kinds, k.name)
			}
		}
		if (s.Iterations != 0 || ps.written(key("iterations"))) && !(len(kinds) == 1 && kinds[0] == StepMatch) {
			ps.at(key("iterations"), "applies to a match step only")
		}
		switch len(kinds) {
		case 0:
			ps.at(at, "a step needs one of weight, pause, match or mirror")
			continue
		case 1:
		default:
			ps.at(at, "a step is one of weight, pause, match or mirror; this one has %s", strings.Join(stepKindNames(kinds), " and "))
			continue
		}
		switch kinds[0] {
		case StepWeight:
			inRange := s.Weight >= 1 && s.Weight <= 100
			switch {
			case !inRange:
				ps.at(at, "weight %d is outside 1-100", s.Weight)
			case lastAt != "" && s.Weight <= lastWeight:
				ps.at(at, "weight %d does not increase on the weight before it (%d)", s.Weight, lastWeight)
			}
			lastWeight, lastAt, lastInRange = s.Weight, at, inRange
		case StepPause:
			switch {
			case s.Pause == nil:
				ps.at(key("pause"), "expected a duration such as 5m, or {} to wait for approval")
			case s.Pause.Duration < 0:
				ps.at(key("pause"), "must be positive, got %s; write pause: {} to wait for approval", s.Pause.Duration)
			}
		case StepMatch:
			if s.Match != nil {
				for _, p := range matchProblems(*s.Match) {
					path := key("match")
					if p.key != "" {
						path += "." + p.key
					}
					ps.at(path, "%s", p.msg)
				}
			} else {
				ps.at(key("match"), "needs headers or a cookie")
			}
			if s.Iterations < 1 {
				ps.at(key("iterations"), "a match step needs iterations: how many analysis intervals it runs, at least 1; got %d", s.Iterations)
			}
		case StepMirror:
			if s.Mirror < 1 || s.Mirror > 100 {
				ps.at(key("mirror"), "%d is outside 1-100 (percent of traffic mirrored)", s.Mirror)
			}
		}
		// An A/B or mirror step keeps every request it does not select on
		// the stable, which a weight step before it has stopped doing.
		if (kinds[0] == StepMatch || kinds[0] == StepMirror) && lastAt != "" {
			ps.at(at, "a %s step must come before the first weight step (%s): during it the stable takes all other traffic", kinds[0], lastAt)
		}
	}
	switch {
	case lastAt == "":
		ps.at(path, "has no weight step: the canary must reach weight 100 before it is promoted")
	case lastInRange && lastWeight != 100:
		ps.at(lastAt, "the last weight step must be 100, got %d: the canary takes all traffic before it is promoted", lastWeight)
	}
}

// validateMetrics checks each metric's keys for its kind: a built-in's
// bounds and options, a custom metric's query through Prometheus's parser.
func validateMetrics(ps *problems, path string, metrics []Metric) {
	first := map[string]int{}
	for i, m := range metrics {
		at := fmt.Sprintf("%s[%d]", path, i)
		key := func(k string) string { return at + "." + k }
		switch {
		case m.Name == "":
			ps.at(key("name"), "is required")
		case !metricName.MatchString(m.Name):
			ps.at(key("name"), "%q is not a metric name: letters, digits, '.', '_' and '-'", m.Name)
		default:
			// One name may be checked several ways: absolutely and against
			// the stable, at P95 and at P99. The same check twice is a slip.
			check := m.Name
			if m.Query == "" && m.Name == analysis.Duration {
				check += fmt.Sprintf(", quantile %g", m.Quantile)
			}
			if m.Relative != nil {
				check += ", relative"
			}
			if j, dup := first[check]; dup {
				ps.at(key("name"), "repeats the check of %s[%d] (%s)", path, j, check)
			} else {
				first[check] = i
			}
		}
		switch m.OnNoData {
		case analysis.OnNoDataHold, analysis.OnNoDataFail, analysis.OnNoDataPass:
		default:
			ps.at(key("onNoData"), "%q is not %s, %s or %s", m.OnNoData, analysis.OnNoDataHold, analysis.OnNoDataFail, analysis.OnNoDataPass)
		}
		if m.MinRequests < 0 {
			ps.at(key("minRequests"), "must not be negative, got %d", m.MinRequests)
		}
		if m.Query == "" && !ps.written(key("query")) {
			validateBuiltinMetric(ps, at, m)
		} else {
			validateCustomMetric(ps, at, m)
		}
	}
}

func validateBuiltinMetric(ps *problems, at string, m Metric) {
	key := func(k string) string { return at + "." + k }
	if m.Name != analysis.SuccessRate && m.Name != analysis.Duration {
		if m.Name != "" {
			ps.at(key("name"), "%q is not a built-in metric (%s, %s): a custom metric needs a query", m.Name, analysis.SuccessRate, analysis.Duration)
		}
		return
	}
	rate := m.Name == analysis.SuccessRate
	if rate && (m.Quantile != 0 || ps.written(key("quantile"))) {
		ps.at(key("quantile"), "applies to %s only", analysis.Duration)
	}
	if !rate && m.Quantile != 0.99 && m.Quantile != 0.95 {
		ps.at(key("quantile"), "%g is not 0.99 or 0.95", m.Quantile)
	}
	if r := m.Relative; r != nil {
		if m.Min != nil || m.Max != nil {
			ps.at(key("relative"), "takes the place of min and max: make two metrics to have both")
			return
		}
		drop, ratio := r.MaxDrop != 0 || ps.written(key("relative.maxDrop")), r.MaxRatio != 0 || ps.written(key("relative.maxRatio"))
		switch {
		case drop && ratio:
			ps.at(key("relative"), "takes one of maxDrop or maxRatio")
		case rate && ratio:
			ps.at(key("relative.maxRatio"), "is for %s; %s takes maxDrop (percentage points below the stable)", analysis.Duration, analysis.SuccessRate)
		case !rate && drop:
			ps.at(key("relative.maxDrop"), "is for %s; %s takes maxRatio (times the stable's)", analysis.SuccessRate, analysis.Duration)
		case rate && !drop:
			ps.at(key("relative"), "needs maxDrop: how many percentage points below the stable's the canary's success rate may be")
		case !rate && !ratio:
			ps.at(key("relative"), "needs maxRatio: how many times the stable's duration the canary's may be, such as 1.2")
		case rate && !(r.MaxDrop >= 0 && r.MaxDrop < 100):
			ps.at(key("relative.maxDrop"), "%g is outside 0 to below 100 (percentage points)", r.MaxDrop)
		case !rate && !(r.MaxRatio >= 1):
			ps.at(key("relative.maxRatio"), "%g is below 1", r.MaxRatio)
		}
		return
	}
	if rate {
		switch {
		case m.Max != nil:
			ps.at(key("max"), "%s takes min (percent), not max", analysis.SuccessRate)
		case m.Min == nil:
			ps.at(at, "%s needs min (the lowest success rate in percent) or relative", analysis.SuccessRate)
		default:
			successRateBound(ps, key("min"), *m.Min)
		}
		return
	}
	switch {
	case m.Min != nil:
		ps.at(key("min"), "%s takes max (milliseconds), not min", analysis.Duration)
	case m.Max == nil:
		ps.at(at, "%s needs max (milliseconds) or relative", analysis.Duration)
	case !(*m.Max > 0):
		ps.at(key("max"), "must be positive milliseconds, got %g", *m.Max)
	}
}

func validateCustomMetric(ps *problems, at string, m Metric) {
	key := func(k string) string { return at + "." + k }
	if m.Name == analysis.SuccessRate || m.Name == analysis.Duration {
		ps.at(key("name"), "%q is built in and takes no query: give the custom metric another name", m.Name)
	}
	if m.Quantile != 0 || ps.written(key("quantile")) {
		ps.at(key("quantile"), "applies to %s only", analysis.Duration)
	}
	if m.Relative != nil {
		ps.at(key("relative"), "applies to the built-in metrics; a custom query compares with {{ stable }} itself")
	}
	if m.MinRequests != 0 {
		ps.at(key("minRequests"), "applies to the built-in metrics only: a custom query has no request count")
	}
	switch {
	case m.Min == nil && m.Max == nil:
		ps.at(at, "custom metric %s needs min, max or both", m.Name)
	case m.Min != nil && m.Max != nil && *m.Min > *m.Max:
		ps.at(key("min"), "%g is above max %g", *m.Min, *m.Max)
	}
	if strings.TrimSpace(m.Query) == "" {
		ps.at(key("query"), "is empty: leave it out for a built-in metric, or write a PromQL template")
		return
	}
	if err := validateQuery(m.Query); err != nil {
		ps.at(key("query"), "%v", err)
	}
}

// successRateBound is the analysis's rule for a lowest success rate, so
// config validate refuses what a canary would: 100% cannot be tested
// (no error rate is low enough to be evidence of meeting it).
func successRateBound(ps *problems, key string, v float64) {
	if !(v > 0 && v < 100) {
		ps.at(key, "%g: want a percentage above 0 and below 100", v)
	}
}

func stepKindNames(kinds []StepKind) []string {
	out := make([]string, len(kinds))
	for i, k := range kinds {
		out[i] = string(k)
	}
	return out
}
