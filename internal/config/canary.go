package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/analysis"
)

// Canary holds the settings of a canary rollout: the project's (canary)
// apply to every service, and a service's own (services[].canary) replace
// them key by key. CanaryFor gives the settings a service's canary runs with.
type Canary struct {
	// Steps are the canary's plan, in order: weights, pauses, A/B matches
	// and mirroring. The weight steps rise, and the last is 100.
	Steps []Step `json:"steps"`
	// Interval is the time per step and the window of each analysis.
	Interval   Duration   `json:"interval"`
	Thresholds Thresholds `json:"thresholds"`
	// Metrics are the checks each step must pass. None written means the
	// built-in metrics at the thresholds' bounds; CanaryFor fills them in.
	Metrics  []Metric `json:"metrics,omitempty"`
	Analysis Analysis `json:"analysis"`
}

// Thresholds bound the built-in metrics when no metrics are written, and
// say how many failed checks the threshold rule tolerates.
type Thresholds struct {
	// MinSuccessRate is the lowest share of non-5xx responses, in percent.
	MinSuccessRate float64 `json:"minSuccessRate"`
	// MaxP95Latency is the highest 95th percentile request latency.
	MaxP95Latency Duration `json:"maxP95Latency"`
	// MaxFailedChecks is the number of failed checks at which the
	// threshold rule (analysis.decision: threshold) rolls the canary back,
	// as Flagger's threshold: 1 rolls back at the first failed check.
	MaxFailedChecks int `json:"maxFailedChecks"`
}

// StepKind is what a canary step does.
type StepKind string

// The kinds of canary step.
const (
	StepWeight StepKind = "weight"
	StepPause  StepKind = "pause"
	StepMatch  StepKind = "match"
	StepMirror StepKind = "mirror"
)

// Step is one step of a canary, of exactly one kind: a traffic weight, a
// pause, an A/B match or mirroring. In the file a bare number N is the
// weight step {weight: N}.
type Step struct {
	// Weight is the canary's share of traffic in percent.
	Weight int `json:"weight,omitempty"`
	// Pause waits: for its duration, or until the canary is promoted.
	Pause *Pause `json:"pause,omitempty"`
	// Match sends the requests it selects to the canary, and the rest to
	// the stable, for Iterations analysis intervals.
	Match      *Match `json:"match,omitempty"`
	Iterations int    `json:"iterations,omitempty"`
	// Mirror copies this percentage of live traffic to the canary, whose
	// responses are discarded; the analysis runs on the copies.
	Mirror int `json:"mirror,omitempty"`
}

// Kind is StepPause, StepMatch, StepMirror or StepWeight; a validated step
// has exactly one.
func (s Step) Kind() StepKind {
	switch {
	case s.Pause != nil:
		return StepPause
	case s.Match != nil:
		return StepMatch
	case s.Mirror != 0:
		return StepMirror
	default:
		return StepWeight
	}
}

// MarshalJSON writes a weight step as its bare number, as the file may,
// and any other step as an object.
func (s Step) MarshalJSON() ([]byte, error) {
	if s.Kind() == StepWeight && s.Iterations == 0 {
		return json.Marshal(s.Weight)
	}
	type plain Step
	return json.Marshal(plain(s))
}

// UnmarshalJSON reads a bare number or a step object.
func (s *Step) UnmarshalJSON(b []byte) error {
	var w int
	if err := json.Unmarshal(b, &w); err == nil {
		*s = Step{Weight: w}
		return nil
	}
	type plain Step
	var p plain
	err := json.Unmarshal(b, &p)
	*s = Step(p)
	return err
}

// Pause is a pause step: Duration long, or, when Duration is 0, until the
// canary is promoted by hand (a manual gate). The file writes the one as
// `pause: 5m` and the other as `pause: {}`.
type Pause struct {
	Duration Duration
}

// Indefinite reports whether the pause waits for approval.
func (p Pause) Indefinite() bool { return p.Duration == 0 }

// MarshalJSON writes the pause as the file does: a duration, or {}.
func (p Pause) MarshalJSON() ([]byte, error) {
	if p.Indefinite() {
		return []byte("{}"), nil
	}
	return json.Marshal(p.Duration)
}

// UnmarshalJSON reads a duration, or {} for a manual gate.
func (p *Pause) UnmarshalJSON(b []byte) error {
	if string(bytes.TrimSpace(b)) == "{}" {
		*p = Pause{}
		return nil
	}
	return json.Unmarshal(b, &p.Duration)
}

// Match selects requests by their headers: a request matches when every
// header matcher and the cookie match.
type Match struct {
	// Headers maps lower-case header names to how their value must match.
	Headers map[string]StringMatch `json:"headers,omitempty"`
	// Cookie is NAME=VALUE: the request's Cookie header holds that cookie.
	Cookie string `json:"cookie,omitempty"`
}

// StringMatch matches a header value: exactly one of its fields is set.
type StringMatch struct {
	Exact  string `json:"exact,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	// Regex is an RE2 expression the whole value must match.
	Regex string `json:"regex,omitempty"`
}

// Validate says what is wrong with m, as Istio and the cookie syntax would
// refuse it, naming the key under the match: "headers.X-Beta: ...".
func (m Match) Validate() error {
	if ps := matchProblems(m); len(ps) > 0 {
		if ps[0].key == "" {
			return fmt.Errorf("%s", ps[0].msg)
		}
		return fmt.Errorf("%s: %s", ps[0].key, ps[0].msg)
	}
	return nil
}

// CookieParts splits Cookie into its name and value; ok is false when it
// is not NAME=VALUE.
func (m Match) CookieParts() (name, value string, ok bool) {
	name, value, ok = strings.Cut(m.Cookie, "=")
	return name, value, ok && name != ""
}

// keyProblem is a problem with a key below some path.
type keyProblem struct{ key, msg string }

// httpToken is a header or cookie name (RFC 9110 token); header names must
// also be lower case, as Istio requires.
var (
	httpToken   = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
	cookieValue = regexp.MustCompile(`^(?:[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*|"[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*")$`)
)

// matchProblems lists what is wrong with m, in a stable order.
func matchProblems(m Match) []keyProblem {
	var out []keyProblem
	if len(m.Headers) == 0 && m.Cookie == "" {
		out = append(out, keyProblem{"", "needs headers or a cookie: a match of nothing would send every request to the canary"})
	}
	names := make([]string, 0, len(m.Headers))
	for name := range m.Headers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		key := "headers." + name
		switch {
		case !httpToken.MatchString(name):
			out = append(out, keyProblem{key, fmt.Sprintf("%q is not an HTTP header name", name)})
			continue
		case name != strings.ToLower(name):
			out = append(out, keyProblem{key, fmt.Sprintf("header names are matched in lower case: write %q", strings.ToLower(name))})
			continue
		case name == "cookie" && m.Cookie != "":
			out = append(out, keyProblem{key, "the cookie key matches the Cookie header already: use one or the other"})
			continue
		}
		out = append(out, stringMatchProblems(key, m.Headers[name])...)
	}
	if m.Cookie != "" {
		name, value, ok := m.CookieParts()
		switch {
		case !ok:
			out = append(out, keyProblem{"cookie", fmt.Sprintf("%q is not NAME=VALUE, such as canary=always", m.Cookie)})
		case !httpToken.MatchString(name):
			out = append(out, keyProblem{"cookie", fmt.Sprintf("%q is not a cookie name", name)})
		case !cookieValue.MatchString(value):
			out = append(out, keyProblem{"cookie", fmt.Sprintf("%q is not a cookie value: no spaces, commas, semicolons, quotes or backslashes", value)})
		}
	}
	return out
}

func stringMatchProblems(key string, sm StringMatch) []keyProblem {
	var set []string
	for _, f := range []struct{ name, v string }{{"exact", sm.Exact}, {"prefix", sm.Prefix}, {"regex", sm.Regex}} {
		if f.v != "" {
			set = append(set, f.name)
		}
	}
	switch len(set) {
	case 0:
		return []keyProblem{{key, "needs one of exact, prefix or regex"}}
	case 1:
	default:
		return []keyProblem{{key, fmt.Sprintf("takes one of exact, prefix or regex, not %s", strings.Join(set, " and "))}}
	}
	if sm.Regex != "" {
		if _, err := regexp.Compile(sm.Regex); err != nil {
			return []keyProblem{{key + ".regex", fmt.Sprintf("%q is not an RE2 regular expression: %s", sm.Regex, strings.TrimPrefix(err.Error(), "error parsing regexp: "))}}
		}
	}
	return nil
}

// Metric is one check of a canary: a built-in metric, or a custom PromQL
// template with {{ namespace }}, {{ service }}, {{ target }} (the canary
// workload), {{ stable }} and {{ interval }}.
type Metric struct {
	// Name is a built-in metric's (analysis.SuccessRate, analysis.Duration)
	// or a custom metric's own.
	Name string `json:"name"`
	// Query is a custom metric's PromQL template; empty for a built-in.
	Query string `json:"query,omitempty"`
	// Min and Max bound the value: a success rate takes Min (percent), a
	// duration Max (milliseconds), a custom metric either or both.
	Min *float64 `json:"min,omitempty"`
	Max *float64 `json:"max,omitempty"`
	// Quantile is request-duration's: 0.99 (the default) or 0.95.
	Quantile float64 `json:"quantile,omitempty"`
	// Relative compares the canary with the stable in the same window,
	// instead of with Min or Max (built-in metrics only).
	Relative *analysis.Relative `json:"relative,omitempty"`
	// OnNoData is analysis.OnNoDataHold (default), OnNoDataFail or
	// OnNoDataPass.
	OnNoData string `json:"onNoData,omitempty"`
	// MinRequests turns a window with fewer canary requests into no data
	// (built-in metrics only); 0 means the canary's analysis.minRequests.
	MinRequests int `json:"minRequests,omitempty"`
}

// What an inconclusive canary ends with (Analysis.OnInconclusive).
const (
	InconclusiveRollback = "rollback"
	InconclusiveKeep     = "keep"
)

// Analysis says how checks become a verdict.
type Analysis struct {
	// Decision is analysis.DecisionSequential (default) or
	// DecisionThreshold.
	Decision string `json:"decision"`
	// Confidence is the sequential test's 1 - alpha: a canary no worse than
	// its bounds is failed with at most probability 1 - Confidence.
	Confidence float64 `json:"confidence"`
	// MinRequests is the fewest canary requests in a window that count as
	// data, for built-in metrics that do not set their own.
	MinRequests int `json:"minRequests"`
	// MaxNoDataChecks and MaxErrorChecks are how many checks without data,
	// or failed Prometheus queries, end the canary Inconclusive.
	MaxNoDataChecks int `json:"maxNoDataChecks"`
	MaxErrorChecks  int `json:"maxErrorChecks"`
	// OnInconclusive is InconclusiveRollback (default) or InconclusiveKeep.
	OnInconclusive string `json:"onInconclusive"`
}

// CanaryOverride is a service's own canary settings (services[].canary):
// the keys it sets replace the project's, the rest come from canary. A nil
// field is a key the service leaves to the project.
type CanaryOverride struct {
	Steps      []Step              `json:"steps,omitempty"`
	Interval   *Duration           `json:"interval,omitempty"`
	Thresholds *ThresholdsOverride `json:"thresholds,omitempty"`
	Metrics    []Metric            `json:"metrics,omitempty"`
	Analysis   *AnalysisOverride   `json:"analysis,omitempty"`
}

// ThresholdsOverride is Thresholds as a service may set them, key by key.
type ThresholdsOverride struct {
	MinSuccessRate  *float64  `json:"minSuccessRate,omitempty"`
	MaxP95Latency   *Duration `json:"maxP95Latency,omitempty"`
	MaxFailedChecks *int      `json:"maxFailedChecks,omitempty"`
}

// AnalysisOverride is Analysis as a service may set it, key by key.
type AnalysisOverride struct {
	Decision        *string  `json:"decision,omitempty"`
	Confidence      *float64 `json:"confidence,omitempty"`
	MinRequests     *int     `json:"minRequests,omitempty"`
	MaxNoDataChecks *int     `json:"maxNoDataChecks,omitempty"`
	MaxErrorChecks  *int     `json:"maxErrorChecks,omitempty"`
	OnInconclusive  *string  `json:"onInconclusive,omitempty"`
}

// CanaryFor returns the settings service's canary runs with: the project's
// canary with the keys the service sets replaced, and Metrics complete (the
// built-ins at the thresholds when none are written, every default filled
// in). An unknown service gets the project's. Slices are copies.
func (p *Project) CanaryFor(service string) Canary {
	c := p.Canary
	c.Steps = slices.Clone(c.Steps)
	c.Metrics = slices.Clone(c.Metrics)
	if s := p.Service(service); s != nil && s.Canary != nil {
		o := s.Canary
		if o.Steps != nil {
			c.Steps = slices.Clone(o.Steps)
		}
		overlay(&c.Interval, o.Interval)
		if t := o.Thresholds; t != nil {
			overlay(&c.Thresholds.MinSuccessRate, t.MinSuccessRate)
			overlay(&c.Thresholds.MaxP95Latency, t.MaxP95Latency)
			overlay(&c.Thresholds.MaxFailedChecks, t.MaxFailedChecks)
		}
		if o.Metrics != nil {
			c.Metrics = slices.Clone(o.Metrics)
		}
		if a := o.Analysis; a != nil {
			overlay(&c.Analysis.Decision, a.Decision)
			overlay(&c.Analysis.Confidence, a.Confidence)
			overlay(&c.Analysis.MinRequests, a.MinRequests)
			overlay(&c.Analysis.MaxNoDataChecks, a.MaxNoDataChecks)
			overlay(&c.Analysis.MaxErrorChecks, a.MaxErrorChecks)
			overlay(&c.Analysis.OnInconclusive, a.OnInconclusive)
		}
	}
	c.Metrics = c.effectiveMetrics()
	return c
}

// overlay sets *dst to *v when the service set v.
func overlay[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// effectiveMetrics are c's metrics with every default filled in; with none
// written, the built-ins at the thresholds' bounds, as before metrics
// existed.
func (c *Canary) effectiveMetrics() []Metric {
	ms := c.Metrics
	if len(ms) == 0 {
		minRate := c.Thresholds.MinSuccessRate
		maxMillis := float64(time.Duration(c.Thresholds.MaxP95Latency)) / float64(time.Millisecond)
		ms = []Metric{
			{Name: analysis.SuccessRate, Min: &minRate},
			{Name: analysis.Duration, Quantile: 0.95, Max: &maxMillis},
		}
	}
	out := make([]Metric, len(ms))
	for i, m := range ms {
		if m.OnNoData == "" {
			m.OnNoData = analysis.OnNoDataHold
		}
		if m.Query == "" {
			if m.MinRequests == 0 {
				m.MinRequests = c.Analysis.MinRequests
			}
			if m.Name == analysis.Duration && m.Quantile == 0 {
				m.Quantile = DefaultQuantile
			}
		}
		out[i] = m
	}
	return out
}
