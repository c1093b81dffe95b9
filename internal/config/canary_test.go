package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/analysis"
)

func ptr[T any](v T) *T { return &v }

// canaryProject is minimal with a canary block (lines from 8 on).
func canaryProject(block string) string { return minimal + "canary:\n" + block }

// withOrderCanary gives the order service (the last) a canary block, at
// four spaces; it starts on line 8.
func withOrderCanary(block string) string { return minimal + "    canary:\n" + block }

func TestStepsDecode(t *testing.T) {
	tests := []struct {
		name  string
		steps string
		want  []Step
		kinds []string
	}{
		{"shorthand", "[10, 25, 50, 100]", DefaultSteps(), []string{"weight", "weight", "weight", "weight"}},
		{"objects and shorthand mixed", `
    - {mirror: 20}
    - match: {headers: {x-beta: {exact: "1"}, x-user: {prefix: "test-"}, x-id: {regex: "^[0-9]+$"}}, cookie: canary=always}
      iterations: 3
    - {pause: {}}
    - 10
    - {weight: 50}
    - pause: 5m
    - 100
    - pause: {}
`, []Step{
			{Mirror: 20},
			{Match: &Match{Headers: map[string]StringMatch{"x-beta": {Exact: "1"}, "x-user": {Prefix: "test-"}, "x-id": {Regex: "^[0-9]+$"}}, Cookie: "canary=always"}, Iterations: 3},
			{Pause: &Pause{}},
			{Weight: 10},
			{Weight: 50},
			{Pause: &Pause{Duration: Duration(5 * time.Minute)}},
			{Weight: 100},
			{Pause: &Pause{}},
		}, []string{"mirror", "match", "pause", "weight", "weight", "pause", "weight", "pause"}},
		{"match on a cookie alone", "[{match: {cookie: \"beta=\\\"yes\\\"\"}, iterations: 1}, 100]", []Step{
			{Match: &Match{Cookie: `beta="yes"`}, Iterations: 1}, {Weight: 100},
		}, []string{"match", "weight"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse("msctl.yaml", []byte(canaryProject("  steps: "+tt.steps+"\n")), nil)
			if err != nil {
				t.Fatal(err)
			}
			got := l.Project.Canary.Steps
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("steps\n got %+v\nwant %+v", got, tt.want)
			}
			var kinds []string
			for _, s := range got {
				kinds = append(kinds, string(s.Kind()))
			}
			if !reflect.DeepEqual(kinds, tt.kinds) {
				t.Errorf("kinds %v, want %v", kinds, tt.kinds)
			}
		})
	}
}

// Steps are written back as the file writes them: a weight as its number,
// a manual gate as {}.
func TestStepsJSONRoundTrip(t *testing.T) {
	steps := []Step{
		{Weight: 10},
		{Pause: &Pause{}},
		{Pause: &Pause{Duration: Duration(90 * time.Second)}},
		{Match: &Match{Headers: map[string]StringMatch{"x-beta": {Exact: "1"}}}, Iterations: 2},
		{Mirror: 5},
	}
	b, err := json.Marshal(steps)
	if err != nil {
		t.Fatal(err)
	}
	const want = `[10,{"pause":{}},{"pause":"1m30s"},{"match":{"headers":{"x-beta":{"exact":"1"}}},"iterations":2},{"mirror":5}]`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
	var back []Step
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, steps) {
		t.Errorf("round trip\n got %+v\nwant %+v", back, steps)
	}
}

func TestCanaryDefaults(t *testing.T) {
	l, err := Parse("msctl.yaml", []byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	c := l.Project.CanaryFor("user")
	want := Canary{
		Steps:      DefaultSteps(),
		Interval:   DefaultCanaryInterval,
		Thresholds: Thresholds{MinSuccessRate: 99, MaxP95Latency: Duration(500 * time.Millisecond), MaxFailedChecks: 2},
		Metrics: []Metric{
			{Name: analysis.SuccessRate, Min: ptr(99.0), OnNoData: "hold", MinRequests: 20},
			{Name: analysis.Duration, Quantile: 0.95, Max: ptr(500.0), OnNoData: "hold", MinRequests: 20},
		},
		Analysis: Analysis{Decision: "sequential", Confidence: 0.99, MinRequests: 20, MaxNoDataChecks: 5, MaxErrorChecks: 5, OnInconclusive: "rollback"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("CanaryFor(user)\n got %+v\nwant %+v", c, want)
	}
	if l.Project.Canary.Metrics != nil {
		t.Errorf("the project's own metrics were filled in: %+v; only CanaryFor resolves them", l.Project.Canary.Metrics)
	}
}

// The thresholds still bound the built-in metrics when no metrics are
// written, for the project and for a service that sets its own.
func TestThresholdsImplyBuiltinMetrics(t *testing.T) {
	src := canaryProject("  thresholds: {minSuccessRate: 95, maxP95Latency: 1s}\n  analysis: {minRequests: 50}\n")
	src = strings.Replace(src, "    calls: [user]\n", "    calls: [user]\n    canary:\n      thresholds: {maxP95Latency: 250ms}\n", 1)
	l, err := Parse("msctl.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	describe := func(ms []Metric) string {
		var s []string
		for _, m := range ms {
			b, _ := json.Marshal(m)
			s = append(s, string(b))
		}
		return strings.Join(s, " ")
	}
	tests := []struct{ service, want string }{
		{"user", `{"name":"request-success-rate","min":95,"onNoData":"hold","minRequests":50} {"name":"request-duration","max":1000,"quantile":0.95,"onNoData":"hold","minRequests":50}`},
		{"order", `{"name":"request-success-rate","min":95,"onNoData":"hold","minRequests":50} {"name":"request-duration","max":250,"quantile":0.95,"onNoData":"hold","minRequests":50}`},
	}
	for _, tt := range tests {
		if got := describe(l.Project.CanaryFor(tt.service).Metrics); got != tt.want {
			t.Errorf("%s\n got %s\nwant %s", tt.service, got, tt.want)
		}
	}
}

func TestMetricsDecode(t *testing.T) {
	src := canaryProject(`  metrics:
    - name: request-success-rate
      min: 99.5
      minRequests: 100
    - name: request-duration
      quantile: 0.95
      relative: {maxRatio: 1.2}
      onNoData: fail
    - name: request-duration
      quantile: 0.95
      max: 300
    - name: request-success-rate
      relative: {maxDrop: 0.5}
    - name: queue-depth
      query: |
        max(queue_depth{namespace="{{ namespace }}", pod=~"{{ target }}-.*"})
          - max(queue_depth{namespace="{{ namespace }}", pod=~"{{ stable }}-.*"})
      max: 0
`)
	l, err := Parse("msctl.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	got := l.Project.CanaryFor("user").Metrics
	want := []Metric{
		{Name: analysis.SuccessRate, Min: ptr(99.5), MinRequests: 100, OnNoData: "hold"},
		{Name: analysis.Duration, Quantile: 0.95, Relative: &analysis.Relative{MaxRatio: 1.2}, OnNoData: "fail", MinRequests: 20},
		{Name: analysis.Duration, Quantile: 0.95, Max: ptr(300.0), OnNoData: "hold", MinRequests: 20},
		{Name: analysis.SuccessRate, Relative: &analysis.Relative{MaxDrop: 0.5}, OnNoData: "hold", MinRequests: 20},
		{Name: "queue-depth", Query: "max(queue_depth{namespace=\"{{ namespace }}\", pod=~\"{{ target }}-.*\"})\n  - max(queue_depth{namespace=\"{{ namespace }}\", pod=~\"{{ stable }}-.*\"})\n", Max: ptr(0.0), OnNoData: "hold"},
	}
	if !reflect.DeepEqual(got, want) {
		gb, _ := json.Marshal(got)
		wb, _ := json.Marshal(want)
		t.Errorf("metrics\n got %s\nwant %s", gb, wb)
	}
	// The project's own list keeps what the file says, defaults aside.
	if m := l.Project.Canary.Metrics[1]; m.MinRequests != 0 || m.OnNoData != "fail" {
		t.Errorf("project metric: %+v", m)
	}
}

// A service's canary keys win, key by key; the rest are the project's.
func TestCanaryOverrides(t *testing.T) {
	// order's block is on lines 8-13, the project's on 14-18.
	src := canaryProject(`  steps: [20, 100]
  interval: 2m
  thresholds: {minSuccessRate: 98, maxFailedChecks: 3}
  analysis: {decision: threshold, maxErrorChecks: 2}
`)
	src = strings.Replace(src, "    calls: [user]\n", `    calls: [user]
    canary:
      steps: [{mirror: 50}, {pause: {}}, 50, 100]
      thresholds: {maxFailedChecks: 1}
      analysis: {confidence: 0.999, onInconclusive: keep}
      metrics:
        - {name: request-success-rate, min: 99.9}
`, 1)
	l, err := Parse("msctl.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Project
	order, user := p.CanaryFor("order"), p.CanaryFor("user")
	checks := []struct {
		name      string
		got, want any
	}{
		{"order's steps", len(order.Steps), 4},
		{"order's first step", order.Steps[0].Kind(), StepMirror},
		{"order inherits the interval", order.Interval, Duration(2 * time.Minute)},
		{"order inherits minSuccessRate", order.Thresholds.MinSuccessRate, 98.0},
		{"order's maxFailedChecks", order.Thresholds.MaxFailedChecks, 1},
		{"order inherits the decision", order.Analysis.Decision, analysis.DecisionThreshold},
		{"order inherits maxErrorChecks", order.Analysis.MaxErrorChecks, 2},
		{"order's confidence", order.Analysis.Confidence, 0.999},
		{"order's onInconclusive", order.Analysis.OnInconclusive, InconclusiveKeep},
		{"order's metrics", len(order.Metrics), 1},
		{"order's metric's minRequests from analysis", order.Metrics[0].MinRequests, 20},
		{"user's steps", len(user.Steps), 2},
		{"user's maxFailedChecks", user.Thresholds.MaxFailedChecks, 3},
		{"user's confidence", user.Analysis.Confidence, 0.99},
		{"user's metrics are implied", len(user.Metrics), 2},
		{"unknown service gets the project's", p.CanaryFor("nope").Thresholds.MaxFailedChecks, 3},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
	// CanaryFor hands out copies.
	order.Steps[0].Mirror = 99
	if p.Service("order").Canary.Steps[0].Mirror != 50 {
		t.Error("changing CanaryFor's steps changed the project")
	}

	origins := map[string]string{
		"services[1].canary.steps[0].mirror":            "msctl.yaml:9",
		"services[1].canary.steps[2]":                   "msctl.yaml:9",
		"services[1].canary.thresholds.maxFailedChecks": "msctl.yaml:10",
		"services[1].canary.metrics[0].min":             "msctl.yaml:13",
		"services[1].canary.metrics[0].onNoData":        "default",
		"canary.steps[0]":                               "msctl.yaml:15",
		"canary.analysis.confidence":                    "default",
	}
	for key, want := range origins {
		if got := l.Origin(key); got != want {
			t.Errorf("Origin(%s) = %q, want %q", key, got, want)
		}
	}
	entries := map[string]string{}
	for _, e := range l.Entries() {
		entries[e.Key] = e.Value + " " + e.Origin
	}
	for key, want := range map[string]string{
		"canary.steps[0]":                            "20 msctl.yaml:15",
		"services[1].canary.steps[0].mirror":         "50 msctl.yaml:9",
		"services[1].canary.steps[1].pause":          "{} msctl.yaml:9",
		"services[1].canary.steps[2]":                "50 msctl.yaml:9",
		"services[1].canary.analysis.onInconclusive": "keep msctl.yaml:11",
		"services[1].canary.metrics[0].name":         "request-success-rate msctl.yaml:13",
		"services[1].canary.metrics[0].onNoData":     "hold default",
		"canary.analysis.maxNoDataChecks":            "5 default",
		"canary.analysis.decision":                   "threshold msctl.yaml:18",
	} {
		if got := entries[key]; got != want {
			t.Errorf("Entries()[%s] = %q, want %q", key, got, want)
		}
	}
	for _, absent := range []string{"services[1].canary.interval", "services[1].canary.steps[0].weight", "services[0].canary", "services[1].canary.metrics[0].query"} {
		for key := range entries {
			if key == absent || strings.HasPrefix(key, absent+".") {
				t.Errorf("Entries() lists %s, which nothing set", key)
			}
		}
	}
	y, err := l.AnnotatedYAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"  steps:\n    - 20 # msctl.yaml:15\n    - 100 # msctl.yaml:15\n",
		"      steps:\n        - mirror: 50 # msctl.yaml:9\n        - pause: {} # msctl.yaml:9\n        - 50 # msctl.yaml:9\n",
		"        maxFailedChecks: 1 # msctl.yaml:10\n",
	} {
		if !strings.Contains(string(y), want) {
			t.Errorf("annotated YAML lacks\n%s\nin\n%s", want, y)
		}
	}
}

// Every canary problem names the file, line, column and key.
func TestCanaryBadInput(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string
	}{
		// Steps.
		{"last weight not 100", canaryProject("  steps: [10, 50]\n"),
			`msctl.yaml:9:15: canary.steps[1]: the last weight step must be 100, got 50: the canary takes all traffic before it is promoted`},
		{"last weight step not 100 before a pause", canaryProject("  steps: [10, 50, {pause: {}}]\n"),
			`msctl.yaml:9:15: canary.steps[1]: the last weight step must be 100, got 50: the canary takes all traffic before it is promoted`},
		{"weights not rising across other steps", canaryProject("  steps: [50, {pause: 1m}, 50, 100]\n"),
			`msctl.yaml:9:28: canary.steps[2]: weight 50 does not increase on the weight before it (50)`},
		{"weight 0", canaryProject("  steps: [0, 100]\n"), `msctl.yaml:9:11: canary.steps[0]: weight 0 is outside 1-100`},
		{"weight above 100", canaryProject("  steps: [{weight: 150}]\n"), `msctl.yaml:9:11: canary.steps[0]: weight 150 is outside 1-100`},
		{"no weight step", canaryProject("  steps: [{pause: {}}]\n"), `msctl.yaml:9:10: canary.steps: has no weight step: the canary must reach weight 100 before it is promoted`},
		{"no steps", canaryProject("  steps: []\n"), `msctl.yaml:9:10: canary.steps: needs at least one step`},
		{"null steps", canaryProject("  steps:\n"), `msctl.yaml:9:9: canary.steps: needs at least one step`},
		{"two kinds in a step", canaryProject("  steps: [{weight: 10, pause: 1m}, 100]\n"),
			`msctl.yaml:9:11: canary.steps[0]: a step is one of weight, pause, match or mirror; this one has weight and pause`},
		{"no kind", canaryProject("  steps: [{}, 100]\n"), `msctl.yaml:9:11: canary.steps[0]: a step needs one of weight, pause, match or mirror`},
		{"null step", canaryProject("  steps: [~, 100]\n"), `msctl.yaml:9:11: canary.steps[0]: a step needs one of weight, pause, match or mirror`},
		{"step of the wrong type", canaryProject("  steps: [ten, 100]\n"),
			`msctl.yaml:9:11: canary.steps[0]: expected a weight such as 25 or a step such as {pause: 5m}, got "ten"`},
		{"fractional weight", canaryProject("  steps: [12.5, 100]\n"),
			`msctl.yaml:9:11: canary.steps[0]: expected a weight such as 25 or a step such as {pause: 5m}, got "12.5"`},
		{"unknown step key", canaryProject("  steps: [{wait: 1m}, 100]\n"), `msctl.yaml:9:12: canary.steps[0].wait: unknown key`},
		{"misspelt step key", canaryProject("  steps: [{mirorr: 10}, 100]\n"), `msctl.yaml:9:12: canary.steps[0].mirorr: unknown key (did you mean "mirror"?)`},
		{"zero pause", canaryProject("  steps: [{pause: 0s}, 100]\n"),
			`msctl.yaml:9:19: canary.steps[0].pause: must be positive, got 0s; write pause: {} to wait for approval`},
		{"negative pause", canaryProject("  steps: [{pause: -1m}, 100]\n"),
			`msctl.yaml:9:19: canary.steps[0].pause: must be positive, got -1m0s; write pause: {} to wait for approval`},
		{"pause not a duration", canaryProject("  steps: [{pause: soon}, 100]\n"),
			`msctl.yaml:9:19: canary.steps[0].pause: expected a duration such as 5m, or {} to wait for approval, got "soon"`},
		{"pause with keys", canaryProject("  steps: [{pause: {until: approved}}, 100]\n"),
			`msctl.yaml:9:20: canary.steps[0].pause.until: unknown key: a pause is a duration such as 5m, or {} to wait for approval`},
		{"pause as a list", canaryProject("  steps: [{pause: []}, 100]\n"),
			`msctl.yaml:9:19: canary.steps[0].pause: expected a duration such as 5m, or {} to wait for approval, got a list`},
		{"null pause", canaryProject("  steps: [{pause: ~}, 100]\n"),
			`msctl.yaml:9:19: canary.steps[0].pause: expected a duration such as 5m, or {} to wait for approval`},
		{"mirror out of range", canaryProject("  steps: [{mirror: 0}, 100]\n"), `msctl.yaml:9:20: canary.steps[0].mirror: 0 is outside 1-100 (percent of traffic mirrored)`},
		{"mirror above 100", canaryProject("  steps: [{mirror: 101}, 100]\n"), `msctl.yaml:9:20: canary.steps[0].mirror: 101 is outside 1-100 (percent of traffic mirrored)`},
		{"mirror after a weight", canaryProject("  steps: [10, {mirror: 10}, 100]\n"),
			`msctl.yaml:9:15: canary.steps[1]: a mirror step must come before the first weight step (canary.steps[0]): during it the stable takes all other traffic`},
		{"match after a weight", canaryProject("  steps: [10, {match: {cookie: a=b}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:15: canary.steps[1]: a match step must come before the first weight step (canary.steps[0]): during it the stable takes all other traffic`},
		{"iterations without match", canaryProject("  steps: [{weight: 100, iterations: 2}]\n"),
			`msctl.yaml:9:37: canary.steps[0].iterations: applies to a match step only`},
		{"match without iterations", canaryProject("  steps: [{match: {cookie: a=b}}, 100]\n"),
			`msctl.yaml:9:11: canary.steps[0].iterations: a match step needs iterations: how many analysis intervals it runs, at least 1; got 0`},
		{"match with zero iterations", canaryProject("  steps: [{match: {cookie: a=b}, iterations: 0}, 100]\n"),
			`msctl.yaml:9:46: canary.steps[0].iterations: a match step needs iterations: how many analysis intervals it runs, at least 1; got 0`},
		{"empty match", canaryProject("  steps: [{match: {}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:19: canary.steps[0].match: needs headers or a cookie: a match of nothing would send every request to the canary`},
		{"null match", canaryProject("  steps: [{match: ~, iterations: 1}, 100]\n"),
			`msctl.yaml:9:19: canary.steps[0].match: needs headers or a cookie`},
		{"upper-case header", canaryProject("  steps: [{match: {headers: {X-Beta: {exact: \"1\"}}}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:30: canary.steps[0].match.headers.X-Beta: header names are matched in lower case: write "x-beta"`},
		{"header name not a token", canaryProject("  steps: [{match: {headers: {\"x beta\": {exact: \"1\"}}}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:30: canary.steps[0].match.headers.x beta: "x beta" is not an HTTP header name`},
		{"header without a matcher", canaryProject("  steps: [{match: {headers: {x-beta: {}}}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:30: canary.steps[0].match.headers.x-beta: needs one of exact, prefix or regex`},
		{"header with two matchers", canaryProject("  steps: [{match: {headers: {x-beta: {exact: \"1\", regex: \"1+\"}}}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:30: canary.steps[0].match.headers.x-beta: takes one of exact, prefix or regex, not exact and regex`},
		{"header with an unknown matcher", canaryProject("  steps: [{match: {headers: {x-beta: {suffix: \"1\"}}}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:39: canary.steps[0].match.headers.x-beta.suffix: unknown key`},
		{"bad regex", canaryProject("  steps: [{match: {headers: {x-beta: {regex: \"(1\"}}}, iterations: 1}, 100]\n"),
			"msctl.yaml:9:46: canary.steps[0].match.headers.x-beta.regex: \"(1\" is not an RE2 regular expression: missing closing ): `(1`"},
		{"regex Go has and RE2 has not", canaryProject("  steps: [{match: {headers: {x-beta: {regex: \"(?=1)\"}}}, iterations: 1}, 100]\n"),
			"msctl.yaml:9:46: canary.steps[0].match.headers.x-beta.regex: \"(?=1)\" is not an RE2 regular expression: invalid or unsupported Perl syntax: `(?=`"},
		{"cookie header and cookie", canaryProject("  steps: [{match: {headers: {cookie: {prefix: a}}, cookie: a=b}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:30: canary.steps[0].match.headers.cookie: the cookie key matches the Cookie header already: use one or the other`},
		{"cookie without =", canaryProject("  steps: [{match: {cookie: canary}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:28: canary.steps[0].match.cookie: "canary" is not NAME=VALUE, such as canary=always`},
		{"cookie without a name", canaryProject("  steps: [{match: {cookie: =1}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:28: canary.steps[0].match.cookie: "=1" is not NAME=VALUE, such as canary=always`},
		{"cookie name not a token", canaryProject("  steps: [{match: {cookie: \"can ary=1\"}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:28: canary.steps[0].match.cookie: "can ary" is not a cookie name`},
		{"cookie value with a semicolon", canaryProject("  steps: [{match: {cookie: \"canary=a;b\"}, iterations: 1}, 100]\n"),
			`msctl.yaml:9:28: canary.steps[0].match.cookie: "a;b" is not a cookie value: no spaces, commas, semicolons, quotes or backslashes`},

		// Metrics.
		{"custom query does not parse", canaryProject("  metrics:\n    - {name: request-duration, max: 250}\n    - name: errors\n      query: sum(rate(x[{{ interval }}])) by\n      max: 1\n"),
			`msctl.yaml:12:14: canary.metrics[1].query: 1:32: parse error: unexpected end of input in grouping opts, expected "("`},
		{"custom query has an unknown placeholder", canaryProject("  metrics:\n    - name: errors\n      query: sum(x{pod=\"{{ pod }}\"})\n      max: 1\n"),
			`msctl.yaml:11:14: canary.metrics[0].query: 1:12: unknown placeholder {{ pod }}: want one of namespace, service, target, stable, interval`},
		{"custom query gives a range", canaryProject("  metrics:\n    - name: errors\n      query: x[5m]\n      max: 1\n"),
			`msctl.yaml:11:14: canary.metrics[0].query: query gives a range vector: want an instant vector or a scalar`},
		{"empty custom query", canaryProject("  metrics:\n    - name: errors\n      query: \"\"\n      max: 1\n"),
			`msctl.yaml:11:14: canary.metrics[0].query: is empty: leave it out for a built-in metric, or write a PromQL template`},
		{"custom metric without bounds", canaryProject("  metrics:\n    - name: errors\n      query: x\n"),
			`msctl.yaml:10:7: canary.metrics[0]: custom metric errors needs min, max or both`},
		{"custom metric min above max", canaryProject("  metrics:\n    - {name: errors, query: x, min: 2, max: 1}\n"),
			`msctl.yaml:10:37: canary.metrics[0].min: 2 is above max 1`},
		{"custom metric with a built-in name", canaryProject("  metrics:\n    - {name: request-duration, query: x, max: 1}\n"),
			`msctl.yaml:10:14: canary.metrics[0].name: "request-duration" is built in and takes no query: give the custom metric another name`},
		{"custom metric relative", canaryProject("  metrics:\n    - {name: errors, query: x, max: 1, relative: {maxRatio: 2}}\n"),
			`msctl.yaml:10:50: canary.metrics[0].relative: applies to the built-in metrics; a custom query compares with {{ stable }} itself`},
		{"custom metric minRequests", canaryProject("  metrics:\n    - {name: errors, query: x, max: 1, minRequests: 10}\n"),
			`msctl.yaml:10:53: canary.metrics[0].minRequests: applies to the built-in metrics only: a custom query has no request count`},
		{"unknown built-in", canaryProject("  metrics:\n    - {name: error-rate, max: 1}\n"),
			`msctl.yaml:10:14: canary.metrics[0].name: "error-rate" is not a built-in metric (request-success-rate, request-duration): a custom metric needs a query`},
		{"duplicate metric", canaryProject("  metrics:\n    - {name: request-duration, max: 5}\n    - {name: request-duration, quantile: 0.99, max: 10}\n"),
			`msctl.yaml:11:14: canary.metrics[1].name: repeats the check of canary.metrics[0] (request-duration, quantile 0.99)`},
		{"duplicate relative metric", canaryProject("  metrics:\n    - {name: request-success-rate, relative: {maxDrop: 1}}\n    - {name: request-success-rate, relative: {maxDrop: 2}}\n"),
			`msctl.yaml:11:14: canary.metrics[1].name: repeats the check of canary.metrics[0] (request-success-rate, relative)`},
		{"duplicate custom metric", canaryProject("  metrics:\n    - {name: q, query: x, max: 1}\n    - {name: q, query: y, max: 1}\n"),
			`msctl.yaml:11:14: canary.metrics[1].name: repeats the check of canary.metrics[0] (q)`},
		{"metric without a name", canaryProject("  metrics:\n    - {max: 1}\n"), `msctl.yaml:10:7: canary.metrics[0].name: is required`},
		{"metric name with spaces", canaryProject("  metrics:\n    - {name: \"my errors\", query: x, max: 1}\n"),
			`msctl.yaml:10:14: canary.metrics[0].name: "my errors" is not a metric name: letters, digits, '.', '_' and '-'`},
		{"success rate above 100", canaryProject("  metrics:\n    - {name: request-success-rate, min: 101}\n"),
			`msctl.yaml:10:41: canary.metrics[0].min: 101: want a percentage above 0 and below 100`},
		{"success rate of 100", canaryProject("  metrics:\n    - {name: request-success-rate, min: 100}\n"),
			`msctl.yaml:10:41: canary.metrics[0].min: 100: want a percentage above 0 and below 100`},
		{"success rate with max", canaryProject("  metrics:\n    - {name: request-success-rate, max: 1}\n"),
			`msctl.yaml:10:41: canary.metrics[0].max: request-success-rate takes min (percent), not max`},
		{"success rate without min", canaryProject("  metrics:\n    - {name: request-success-rate}\n"),
			`msctl.yaml:10:7: canary.metrics[0]: request-success-rate needs min (the lowest success rate in percent) or relative`},
		{"success rate with a quantile", canaryProject("  metrics:\n    - {name: request-success-rate, min: 99, quantile: 0.99}\n"),
			`msctl.yaml:10:55: canary.metrics[0].quantile: applies to request-duration only`},
		{"duration with min", canaryProject("  metrics:\n    - {name: request-duration, min: 1}\n"),
			`msctl.yaml:10:37: canary.metrics[0].min: request-duration takes max (milliseconds), not min`},
		{"duration without max", canaryProject("  metrics:\n    - {name: request-duration}\n"),
			`msctl.yaml:10:7: canary.metrics[0]: request-duration needs max (milliseconds) or relative`},
		{"duration max zero", canaryProject("  metrics:\n    - {name: request-duration, max: 0}\n"),
			`msctl.yaml:10:37: canary.metrics[0].max: must be positive milliseconds, got 0`},
		{"duration quantile", canaryProject("  metrics:\n    - {name: request-duration, max: 5, quantile: 0.5}\n"),
			`msctl.yaml:10:50: canary.metrics[0].quantile: 0.5 is not 0.99 or 0.95`},
		{"relative with a bound", canaryProject("  metrics:\n    - {name: request-duration, max: 5, relative: {maxRatio: 1.2}}\n"),
			`msctl.yaml:10:50: canary.metrics[0].relative: takes the place of min and max: make two metrics to have both`},
		{"relative ratio below 1", canaryProject("  metrics:\n    - {name: request-duration, relative: {maxRatio: 0.8}}\n"),
			`msctl.yaml:10:53: canary.metrics[0].relative.maxRatio: 0.8 is below 1`},
		{"relative drop for a duration", canaryProject("  metrics:\n    - {name: request-duration, relative: {maxDrop: 1}}\n"),
			`msctl.yaml:10:52: canary.metrics[0].relative.maxDrop: is for request-success-rate; request-duration takes maxRatio (times the stable's)`},
		{"relative ratio for a success rate", canaryProject("  metrics:\n    - {name: request-success-rate, relative: {maxRatio: 1.2}}\n"),
			`msctl.yaml:10:57: canary.metrics[0].relative.maxRatio: is for request-duration; request-success-rate takes maxDrop (percentage points below the stable)`},
		{"relative drop of 100", canaryProject("  metrics:\n    - {name: request-success-rate, relative: {maxDrop: 100}}\n"),
			`msctl.yaml:10:56: canary.metrics[0].relative.maxDrop: 100 is outside 0 to below 100 (percentage points)`},
		{"relative of nothing", canaryProject("  metrics:\n    - {name: request-success-rate, relative: {}}\n"),
			`msctl.yaml:10:46: canary.metrics[0].relative: needs maxDrop: how many percentage points below the stable's the canary's success rate may be`},
		{"relative of both", canaryProject("  metrics:\n    - {name: request-duration, relative: {maxDrop: 1, maxRatio: 2}}\n"),
			`msctl.yaml:10:42: canary.metrics[0].relative: takes one of maxDrop or maxRatio`},
		{"unknown onNoData", canaryProject("  metrics:\n    - {name: request-duration, max: 5, onNoData: skip}\n"),
			`msctl.yaml:10:50: canary.metrics[0].onNoData: "skip" is not hold, fail or pass`},
		{"negative minRequests", canaryProject("  metrics:\n    - {name: request-duration, max: 5, minRequests: -1}\n"),
			`msctl.yaml:10:53: canary.metrics[0].minRequests: must not be negative, got -1`},
		{"no metrics", canaryProject("  metrics: []\n"),
			`msctl.yaml:9:12: canary.metrics: lists no metrics; leave the key out for the built-in metrics at the thresholds`},
		{"thresholds superseded by metrics", canaryProject("  thresholds: {minSuccessRate: 95}\n  metrics: [{name: request-duration, max: 5}]\n"),
			`msctl.yaml:9:32: canary.thresholds.minSuccessRate: has no effect while canary.metrics lists the metrics: give it as the min of request-success-rate there`},

		// Thresholds and analysis.
		{"minSuccessRate 0", canaryProject("  thresholds: {minSuccessRate: 0}\n"), `msctl.yaml:9:32: canary.thresholds.minSuccessRate: 0: want a percentage above 0 and below 100`},
		{"minSuccessRate 100", canaryProject("  thresholds: {minSuccessRate: 100}\n"), `msctl.yaml:9:32: canary.thresholds.minSuccessRate: 100: want a percentage above 0 and below 100`},
		{"minSuccessRate above 100", canaryProject("  thresholds: {minSuccessRate: 100.5}\n"), `msctl.yaml:9:32: canary.thresholds.minSuccessRate: 100.5: want a percentage above 0 and below 100`},
		{"maxP95Latency 0", canaryProject("  thresholds: {maxP95Latency: 0s}\n"), `msctl.yaml:9:31: canary.thresholds.maxP95Latency: must be positive, got 0s`},
		{"maxFailedChecks 0", canaryProject("  thresholds: {maxFailedChecks: 0}\n"), `msctl.yaml:9:33: canary.thresholds.maxFailedChecks: must be at least 1, got 0`},
		{"interval too short", canaryProject("  interval: 500ms\n"), `msctl.yaml:9:13: canary.interval: 500ms is shorter than 1s`},
		{"unknown decision", canaryProject("  analysis: {decision: bayes}\n"), `msctl.yaml:9:24: canary.analysis.decision: "bayes" is not sequential or threshold`},
		{"confidence 0.5", canaryProject("  analysis: {confidence: 0.5}\n"), `msctl.yaml:9:26: canary.analysis.confidence: 0.5 is outside (0.5, 0.9999]`},
		{"confidence 1", canaryProject("  analysis: {confidence: 1}\n"), `msctl.yaml:9:26: canary.analysis.confidence: 1 is outside (0.5, 0.9999]`},
		{"negative minRequests", canaryProject("  analysis: {minRequests: -1}\n"), `msctl.yaml:9:27: canary.analysis.minRequests: must not be negative, got -1`},
		{"maxNoDataChecks 0", canaryProject("  analysis: {maxNoDataChecks: 0}\n"), `msctl.yaml:9:31: canary.analysis.maxNoDataChecks: must be at least 1, got 0`},
		{"maxErrorChecks 0", canaryProject("  analysis: {maxErrorChecks: 0}\n"), `msctl.yaml:9:30: canary.analysis.maxErrorChecks: must be at least 1, got 0`},
		{"unknown onInconclusive", canaryProject("  analysis: {onInconclusive: pause}\n"), `msctl.yaml:9:30: canary.analysis.onInconclusive: "pause" is not rollback or keep`},
		{"misspelt analysis key", canaryProject("  analysis: {confidance: 0.9}\n"), `msctl.yaml:9:14: canary.analysis.confidance: unknown key (did you mean "confidence"?)`},

		// A service's own canary.
		{"service steps not ending at 100", withOrderCanary("      steps: [10, 50]\n"),
			`msctl.yaml:9:19: services[1].canary.steps[1]: the last weight step must be 100, got 50: the canary takes all traffic before it is promoted`},
		{"service empty steps", withOrderCanary("      steps: []\n"), `msctl.yaml:9:14: services[1].canary.steps: needs at least one step`},
		{"service bad header", withOrderCanary("      steps: [{match: {headers: {x-b: {regex: \"[\"}}}, iterations: 1}, 100]\n"),
			"msctl.yaml:9:47: services[1].canary.steps[0].match.headers.x-b.regex: \"[\" is not an RE2 regular expression: missing closing ]: `[`"},
		{"service thresholds out of range", withOrderCanary("      thresholds: {maxFailedChecks: 0}\n"),
			`msctl.yaml:9:37: services[1].canary.thresholds.maxFailedChecks: must be at least 1, got 0`},
		{"service analysis out of range", withOrderCanary("      analysis: {confidence: 2}\n"),
			`msctl.yaml:9:30: services[1].canary.analysis.confidence: 2 is outside (0.5, 0.9999]`},
		{"service interval", withOrderCanary("      interval: 0s\n"), `msctl.yaml:9:17: services[1].canary.interval: 0s is shorter than 1s`},
		{"service query", withOrderCanary("      metrics: [{name: e, query: \"sum(\", max: 1}]\n"),
			`msctl.yaml:9:34: services[1].canary.metrics[0].query: 1:5: parse error: unclosed left parenthesis`},
		{"service threshold superseded by its own metrics", withOrderCanary("      thresholds: {maxP95Latency: 1s}\n      metrics: [{name: request-success-rate, min: 90}]\n"),
			`msctl.yaml:9:35: services[1].canary.thresholds.maxP95Latency: has no effect while services[1].canary.metrics lists the metrics: give it as the max of request-duration with quantile 0.95 there`},
		{"service threshold superseded by the project's metrics",
			strings.Replace(minimal, "    calls: [user]\n", "    calls: [user]\n    canary: {thresholds: {minSuccessRate: 90}}\n", 1) + "canary:\n  metrics: [{name: request-success-rate, min: 90}]\n",
			`msctl.yaml:8:43: services[1].canary.thresholds.minSuccessRate: has no effect while canary.metrics lists the metrics: give it as the min of request-success-rate there`},
		{"unknown service canary key", withOrderCanary("      stepz: [100]\n"), `msctl.yaml:9:7: services[1].canary.stepz: unknown key (did you mean "steps"?)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("msctl.yaml", []byte(tt.src), nil)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got %v, want *config.Error", err)
			}
			if got := cerr.Problems[0].String(); got != tt.want {
				t.Errorf("first problem\n got: %s\nwant: %s", got, tt.want)
			}
			if len(cerr.Problems) > 1 {
				t.Errorf("%d problems, want 1: %v", len(cerr.Problems), cerr.Problems)
			}
		})
	}
}

func TestMatchValidate(t *testing.T) {
	tests := []struct {
		m    Match
		want string
	}{
		{Match{Cookie: "canary=always"}, ""},
		{Match{Headers: map[string]StringMatch{"x-beta": {Prefix: "a"}}}, ""},
		{Match{}, "needs headers or a cookie: a match of nothing would send every request to the canary"},
		{Match{Headers: map[string]StringMatch{"X-Beta": {Exact: "1"}}}, `headers.X-Beta: header names are matched in lower case: write "x-beta"`},
		{Match{Headers: map[string]StringMatch{"x-beta": {Regex: "a{"}}}, ""},
		{Match{Headers: map[string]StringMatch{"x-beta": {Regex: "(?<n>a)+\\"}}}, "headers.x-beta.regex: \"(?<n>a)+\\\\\" is not an RE2 regular expression: trailing backslash at end of expression: ``"},
		{Match{Cookie: "a"}, `cookie: "a" is not NAME=VALUE, such as canary=always`},
	}
	for _, tt := range tests {
		got := ""
		if err := tt.m.Validate(); err != nil {
			got = err.Error()
		}
		if got != tt.want {
			t.Errorf("%+v\n got %q\nwant %q", tt.m, got, tt.want)
		}
	}
}

// LoadExceptCanary sets the canary blocks' problems aside, and only theirs:
// what acts on a canary in progress needs the rest of the file.
func TestLoadExceptCanary(t *testing.T) {
	dir := t.TempDir()
	write := func(src string) string {
		path := filepath.Join(dir, "msctl.yaml")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}
	broken := withOrderCanary("      steps: [150]\n") + "canary:\n  interval: soon\n"
	path := write(broken)
	if _, err := Load(path, nil); err == nil {
		t.Fatal("Load took a broken canary block")
	}
	l, err := LoadExceptCanary(path, nil)
	if err != nil {
		t.Fatalf("LoadExceptCanary: %v", err)
	}
	var ce *Error
	if !errors.As(l.CanaryErr, &ce) || len(ce.Problems) < 2 || l.Project.Service("order") == nil {
		t.Fatalf("canary problems %v", l.CanaryErr)
	}
	for _, p := range ce.Problems {
		if p.Line == 0 || !strings.Contains(p.Path, "canary") {
			t.Errorf("problem %s names no canary key and line", p)
		}
	}
	// Any other problem still fails.
	path = write(strings.Replace(broken, "name: shop", "name: Shop!", 1))
	_, err = LoadExceptCanary(path, nil)
	if !errors.As(err, &ce) || !slices.ContainsFunc(ce.Problems, func(p Problem) bool { return p.Path == "name" }) ||
		!slices.ContainsFunc(ce.Problems, func(p Problem) bool { return p.Path == "canary.interval" }) {
		t.Fatalf("a bad name: %v; want every problem, the canary blocks' too", err)
	}
	l, err = LoadExceptCanary(write(minimal), nil)
	if err != nil || l.CanaryErr != nil {
		t.Fatalf("a good file: %v, %v", err, l.CanaryErr)
	}
}
