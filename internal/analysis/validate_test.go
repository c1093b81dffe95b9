package analysis

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		m    Metric
		err  string // empty: valid
	}{
		{"success rate", Metric{Name: SuccessRate, Min: ptr(99)}, ""},
		{"P95 at a bucket bound", Metric{Name: DurationP95, Max: ptr(500)}, ""},
		{"P99 off the buckets, threshold rule", Metric{Name: Duration, Max: ptr(300), Decision: DecisionThreshold}, ""},
		{"relative success rate", Metric{Name: SuccessRate, Relative: &Relative{MaxDrop: 0.5}}, ""},
		{"relative P99", Metric{Name: Duration, Relative: &Relative{MaxRatio: 1.2}}, ""},
		{"custom", Metric{Name: "q", Query: `sum(rate(http_requests_total{namespace="{{ namespace }}",pod=~"{{target}}-.*"}[{{ interval }}]))`, Max: ptr(1)}, ""},
		{"custom with stable", Metric{Name: "q", Query: `sum(up{job="{{ stable }}"}) - sum(up{job="{{ service }}"})`, Min: ptr(0)}, ""},

		{"no name", Metric{Min: ptr(1)}, "metric has no name"},
		{"unknown built-in", Metric{Name: "latency", Max: ptr(1)}, `metric "latency" is not built in`},
		{"success rate with max", Metric{Name: SuccessRate, Max: ptr(99)}, "takes min (a success rate in percent), not max"},
		{"success rate out of range", Metric{Name: SuccessRate, Min: ptr(100)}, "min 100: want a percentage above 0 and below 100"},
		{"duration without max", Metric{Name: Duration}, "metric request-duration has no max"},
		{"P99 off the buckets", Metric{Name: Duration, Max: ptr(300)}, "max 300 ms is not a bucket bound of istio_request_duration_milliseconds (0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000"},
		{"relative and min", Metric{Name: SuccessRate, Min: ptr(99), Relative: &Relative{MaxDrop: 1}}, "relative and min/max together"},
		{"relative ratio below 1", Metric{Name: Duration, Relative: &Relative{MaxRatio: 0.9}}, "maxRatio 0.9: want a finite number of at least 1"},
		{"relative P99 sequential", Metric{Name: Duration, Relative: &Relative{MaxRatio: 1.2}, Decision: DecisionSequential}, "decision: sequential needs request counts, which relative request-duration has not"},
		{"custom sequential", Metric{Name: "q", Query: "vector(1)", Max: ptr(1), Decision: DecisionSequential}, "which custom metric q has not"},
		{"custom minRequests", Metric{Name: "q", Query: "vector(1)", Max: ptr(1), MinRequests: 10}, "minRequests applies to the built-in metrics only"},
		{"custom without bounds", Metric{Name: "q", Query: "vector(1)"}, "metric q has neither min nor max"},
		{"bad decision", Metric{Name: SuccessRate, Min: ptr(99), Decision: "bayes"}, `decision "bayes": want sequential or threshold`},
		{"bad onNoData", Metric{Name: SuccessRate, Min: ptr(99), OnNoData: "skip"}, `onNoData "skip": want hold, fail or pass`},
		{"min above max", Metric{Name: "q", Query: "vector(1)", Min: ptr(2), Max: ptr(1)}, "min 2 is above max 1"},

		// Parse errors are placed in the template, not in the query the
		// placeholders expanded into.
		{"parse error after a placeholder", Metric{Name: "q", Query: `sum(rate(x{ns="{{ namespace }}"}[{{ interval }}])) +`, Max: ptr(1)}, "1:53: parse error: unexpected end of input"},
		{"parse error on line 2", Metric{Name: "q", Query: "sum(\n  rate(x{a=\"{{ target }}\"}[{{ interval }}]) by)", Max: ptr(1)}, "2:45: parse error: unexpected <by> in aggregation"},
		// The parser itself places this one past the parenthesis.
		{"parse error with no placeholder", Metric{Name: "q", Query: `sum(rate(x[5m])) ) `, Max: ptr(1)}, "1:19: parse error: unexpected right parenthesis ')'"},
		{"range vector", Metric{Name: "q", Query: `x[{{ interval }}]`, Max: ptr(1)}, "query gives a range vector: want an instant vector or a scalar"},
		{"unknown placeholder", Metric{Name: "q", Query: `sum(x{a="{{ app }}"})`, Max: ptr(1)}, "1:10: unknown placeholder {{ app }}: want one of namespace, service, target, stable, interval"},
		{"unclosed placeholder", Metric{Name: "q", Query: `sum(x{a="{{ target"})`, Max: ptr(1)}, "1:10: {{ opens no placeholder"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.m)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tt.err != "" && err == nil:
				t.Fatalf("Validate: nil, want %q", tt.err)
			case tt.err != "" && !strings.Contains(err.Error(), tt.err):
				t.Fatalf("Validate: %v\nwant it to contain %q", err, tt.err)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Fatalf("Validate: %q is more than one line", err)
			}
		})
	}
}

func TestTemplateOffset(t *testing.T) {
	tpl := `a{{ target }}b{{interval}}c`
	r, err := render(tpl, vars(Target{Canary: "user-canary"}, 90e9))
	if err != nil {
		t.Fatal(err)
	}
	if r.query != "auser-canaryb1m30sc" {
		t.Fatalf("rendered %q", r.query)
	}
	for _, tt := range []struct{ out, tpl int }{
		{0, 0},   // a
		{1, 1},   // inside the canary's name: the placeholder
		{5, 1},   //
		{12, 13}, // b
		{13, 14}, // inside the interval
		{18, 26}, // c
	} {
		if got := r.templateOffset(tt.out); got != tt.tpl {
			t.Errorf("templateOffset(%d) = %d, want %d", tt.out, got, tt.tpl)
		}
	}
}

// A canary state written before the analysis named MaxDrop as msctl.yaml
// does still reads: its maxPointsBelow is MaxDrop.
func TestRelativeReadsItsOldName(t *testing.T) {
	var m Metric
	if err := json.Unmarshal([]byte(`{"name":"request-success-rate","relative":{"maxPointsBelow":0.5}}`), &m); err != nil || m.Relative == nil || m.Relative.MaxDrop != 0.5 {
		t.Fatalf("old state: %+v, %v", m.Relative, err)
	}
	b, err := json.Marshal(m)
	if err != nil || string(b) != `{"name":"request-success-rate","relative":{"maxDrop":0.5}}` {
		t.Errorf("written as %s, %v", b, err)
	}
}
