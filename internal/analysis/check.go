package analysis

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Check is the record of one evaluation of a metric: enough to tell later
// what was asked, what Prometheus answered and why the check decided what
// it did.
type Check struct {
	Metric   string   `json:"metric"`
	Rule     string   `json:"rule"` // sequential or threshold
	Decision Decision `json:"decision"`
	Reason   string   `json:"reason"`
	// NoData is true when the data was missing or too thin, whatever
	// onNoData made of it.
	NoData bool `json:"noData,omitempty"`
	// Query is the resolved query of Value; Queries all those run.
	Query   string   `json:"query"`
	Queries []string `json:"queries,omitempty"`
	// Window is the interval of Value and of Requests and Errors, up to
	// At: the analysis interval, cut short so that it starts no earlier
	// than the interval (so no request before this canary or this step is
	// read). Since starts the counts of the sequential test.
	Window time.Duration `json:"window"`
	Since  time.Time     `json:"since"`
	At     time.Time     `json:"at"`
	// StableAt is when the stable's value was read, when not at At: the
	// end of the last interval in which the stable had traffic.
	StableAt time.Time `json:"stableAt,omitzero"`
	// Value is the canary's value over the window, Stable the stable's
	// (relative checks); nil when there was none.
	Value  *Number `json:"value,omitempty"`
	Stable *Number `json:"stable,omitempty"`
	// Min and Max are the bounds Value was held to.
	Min *Number `json:"min,omitempty"`
	Max *Number `json:"max,omitempty"`
	// Requests and Errors are the canary's over the window; Errors are
	// 5xx responses, or for a duration the requests over its max.
	Requests float64 `json:"requests"`
	Errors   float64 `json:"errors"`
	// TotalRequests and TotalErrors are the canary's since Since, the
	// Stable ones the stable's (sequential rule).
	TotalRequests       float64 `json:"totalRequests,omitempty"`
	TotalErrors         float64 `json:"totalErrors,omitempty"`
	StableTotalRequests float64 `json:"stableTotalRequests,omitempty"`
	StableTotalErrors   float64 `json:"stableTotalErrors,omitempty"`
	// Evidence is the sequential test's likelihood ratio; the check fails
	// when it reaches 1/Alpha.
	Evidence Number  `json:"evidence,omitempty"`
	Alpha    float64 `json:"alpha,omitempty"`
}

// Analyzer evaluates metrics against one Prometheus.
type Analyzer struct {
	Querier Querier
	// Sequential holds the sequential test's parameters; zero means the
	// defaults.
	Sequential Sequential
	// QueryTimeout bounds each query; zero means a quarter of the
	// target's interval, at most 30s. A stalled Prometheus must not stall
	// the canary that asks it: the check is an error and the driver goes
	// on reading its requests.
	QueryTimeout time.Duration
}

// Window is when a check looks.
type Window struct {
	// Since is when the canary's analysis started: the sequential test
	// counts from there, and its bound on false failures holds over the
	// whole run only if Since stays the same.
	Since time.Time
	// From is the earliest time the point estimate reads: the start of the
	// analysis interval. The canary workload's series outlive a canary,
	// so a window reaching before From would read the previous one's
	// requests. Zero means the whole interval.
	From time.Time
	At   time.Time
	// StableAt, when set, is when the stable's value is read instead of
	// At: at a step where the canary takes every request, the stable has
	// none, so a relative check compares with its last interval that had
	// them.
	StableAt time.Time
}

// span is the point estimate's window: the interval, cut at From, whole
// seconds and at least one.
func (w Window) span(interval time.Duration) time.Duration {
	if w.From.IsZero() || !w.From.After(w.At.Add(-interval)) {
		return interval
	}
	return max(time.Second, w.At.Sub(w.From).Truncate(time.Second))
}

// Check evaluates m once on t, in w. It never returns an error: a failed
// or timed-out query is a check with decision Error.
func (a *Analyzer) Check(ctx context.Context, m Metric, t Target, w Window) Check {
	c := Check{Metric: m.Name, Rule: m.decision(), Window: w.span(t.Interval), Since: w.Since, At: w.At}
	if m.Relative != nil && !w.StableAt.IsZero() {
		c.StableAt = w.StableAt
	}
	if c.Rule == DecisionSequential {
		c.Alpha = a.Sequential.Alpha()
	}
	o, err := a.observe(ctx, m, t, w, &c)
	if err != nil {
		c.Decision, c.Reason = Error, err.Error()
		return c
	}
	v := Decide(m, o, a.Sequential)
	c.Decision, c.Reason, c.NoData = v.Decision, v.Reason, v.NoData
	c.Min, c.Max, c.Evidence = numPtr(v.Min), numPtr(v.Max), Number(v.Evidence)
	if o.Value.OK {
		c.Value = numPtr(&o.Value.Value)
	}
	if o.Stable.OK {
		c.Stable = numPtr(&o.Stable.Value)
	}
	win := o.Window.whole()
	c.Requests, c.Errors = win.Requests, win.Bad
	total, stable := o.Total.whole(), o.StableTotal.whole()
	c.TotalRequests, c.TotalErrors = total.Requests, total.Bad
	c.StableTotalRequests, c.StableTotalErrors = stable.Requests, stable.Bad
	return c
}

// observe runs m's queries and gathers what they gave.
func (a *Analyzer) observe(ctx context.Context, m Metric, t Target, w Window, c *Check) (Observation, error) {
	var o Observation
	if err := Validate(m); err != nil {
		return o, fmt.Errorf("metric %s: %v", m.Name, err)
	}
	if err := checkTarget(m, t); err != nil {
		return o, err
	}
	if a.Querier == nil {
		return o, errors.New("no Prometheus to query")
	}
	timeout := a.queryTimeout(t.Interval)
	now := w.At
	runAt := func(tpl string, t Target, window time.Duration, at time.Time) (Sample, error) {
		q, err := parseTemplate(tpl, vars(t, window))
		if err != nil {
			return Sample{}, fmt.Errorf("metric %s: %v", m.Name, err)
		}
		c.Queries = append(c.Queries, q)
		if c.Query == "" {
			c.Query = q
		}
		qctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		s, err := a.Querier.Query(qctx, q, at)
		if err != nil && ctx.Err() == nil && errors.Is(qctx.Err(), context.DeadlineExceeded) {
			return s, fmt.Errorf("metric %s: no answer from Prometheus within %s (the query timeout, a quarter of the interval): %v", m.Name, timeout, err)
		}
		return s, err
	}
	run := func(tpl string, t Target, window time.Duration) (Sample, error) { return runAt(tpl, t, window, now) }
	counts := func(t Target, window time.Duration) (Counts, error) {
		total, bad := countTemplates(m)
		n, err := run(total, t, window)
		if err != nil || bad == "" {
			return Counts{Requests: n.Value}, err
		}
		x, err := run(bad, t, window)
		if err != nil {
			return Counts{}, err
		}
		if n.OK && n.Value > 0 && !x.OK && m.isLatency() {
			return Counts{}, fmt.Errorf("metric %s: istio_request_duration_milliseconds_bucket has no bucket le=%q: the sequential test counts slow requests by bucket, so max must be a bucket bound", m.Name, num(*m.Max))
		}
		// No series means no requests, which is what no-data is made of.
		return Counts{Requests: n.Value, Bad: x.Value}, nil
	}
	stable := t
	stable.Canary = t.Stable

	var err error
	window := w.span(t.Interval)
	if o.Value, err = run(valueTemplate(m), t, window); err != nil {
		return o, err
	}
	if m.Relative != nil {
		if w.StableAt.IsZero() {
			o.Stable, err = run(valueTemplate(m), stable, window)
		} else {
			o.StableAt = w.StableAt
			o.Stable, err = runAt(valueTemplate(m), stable, t.Interval, w.StableAt)
		}
		if err != nil {
			return o, err
		}
	}
	if !m.builtin() {
		return o, nil
	}
	if o.Window, err = counts(t, window); err != nil {
		return o, err
	}
	if m.decision() != DecisionSequential {
		return o, nil
	}
	elapsed := elapsedWindow(w.Since, now)
	if elapsed < time.Second {
		return o, nil
	}
	if o.Total, err = counts(t, elapsed); err != nil {
		return o, err
	}
	if m.Relative != nil {
		if o.StableTotal, err = counts(stable, elapsed); err != nil {
			return o, err
		}
	}
	return o, nil
}

func (a *Analyzer) queryTimeout(interval time.Duration) time.Duration {
	if a.QueryTimeout > 0 {
		return a.QueryTimeout
	}
	return min(30*time.Second, max(time.Second, interval/4))
}

// checkTarget refuses names that would break out of a PromQL string.
func checkTarget(m Metric, t Target) error {
	if t.Interval <= 0 {
		return fmt.Errorf("metric %s: interval %s: want a positive duration", m.Name, t.Interval)
	}
	for _, f := range []struct{ name, v string }{
		{"namespace", t.Namespace}, {"service", t.Service}, {"canary", t.Canary}, {"stable", t.Stable},
	} {
		for _, r := range f.v {
			if r == '"' || r == '\\' || r == '\n' {
				return fmt.Errorf("metric %s: %s %q holds a quote, backslash or newline", m.Name, f.name, f.v)
			}
		}
	}
	switch {
	case t.Namespace == "":
		return fmt.Errorf("metric %s: target has no namespace", m.Name)
	case t.Canary == "":
		return fmt.Errorf("metric %s: target has no canary workload", m.Name)
	case t.Stable == "" && m.Relative != nil:
		return fmt.Errorf("metric %s: a relative check needs the stable workload", m.Name)
	}
	return nil
}
