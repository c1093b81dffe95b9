package analysis

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// promqlParser is Prometheus's own parser with a server's default options: no
// experimental functions.
var promqlParser = parser.NewParser(parser.Options{})

// exampleTarget fills the placeholders when a template is checked before
// any canary exists.
var exampleTarget = Target{Namespace: "ns", Service: "svc", Canary: "svc-canary", Stable: "svc", Interval: time.Minute}

// Validate checks m as config validation needs: a known built-in name or a
// query that Prometheus's parser accepts, thresholds in range, and options
// that fit the decision rule. A parse error is one line with the line and
// column in the user's template: "1:17: parse error: unexpected ...".
func Validate(m Metric) error {
	if m.Name == "" {
		return errors.New("metric has no name")
	}
	if err := checkOptions(m); err != nil {
		return err
	}
	if m.builtin() {
		if err := checkBuiltin(m); err != nil {
			return err
		}
	} else if err := checkCustom(m); err != nil {
		return err
	}
	// The built-in templates are checked too: a typo there is a bug that a
	// test catches.
	for _, tpl := range templatesOf(m) {
		if _, err := parseTemplate(tpl, vars(exampleTarget, exampleTarget.Interval)); err != nil {
			return err
		}
	}
	return nil
}

func checkOptions(m Metric) error {
	switch m.Decision {
	case "", DecisionThreshold:
	case DecisionSequential:
		if !m.sequentialPossible() {
			return fmt.Errorf("decision: sequential needs request counts, which %s has not: use decision: threshold", describe(m))
		}
	default:
		return fmt.Errorf("decision %q: want %s or %s", m.Decision, DecisionSequential, DecisionThreshold)
	}
	switch m.OnNoData {
	case "", OnNoDataHold, OnNoDataFail, OnNoDataPass:
	default:
		return fmt.Errorf("onNoData %q: want %s, %s or %s", m.OnNoData, OnNoDataHold, OnNoDataFail, OnNoDataPass)
	}
	if m.MinRequests < 0 {
		return fmt.Errorf("minRequests %d: want 0 or more", m.MinRequests)
	}
	if m.MinRequests > 0 && !m.builtin() {
		return errors.New("minRequests applies to the built-in metrics only: a custom query has no request count")
	}
	for _, b := range []struct {
		name string
		v    *float64
	}{{"min", m.Min}, {"max", m.Max}} {
		if b.v != nil && (math.IsNaN(*b.v) || math.IsInf(*b.v, 0)) {
			return fmt.Errorf("%s %v: want a finite number", b.name, *b.v)
		}
	}
	if m.Min != nil && m.Max != nil && *m.Min > *m.Max {
		return fmt.Errorf("min %g is above max %g", *m.Min, *m.Max)
	}
	return nil
}

func checkBuiltin(m Metric) error {
	switch m.Name {
	case SuccessRate, Duration, DurationP95:
	default:
		return fmt.Errorf("metric %q is not built in (%s, %s, %s) and has no query", m.Name, SuccessRate, Duration, DurationP95)
	}
	if m.Relative != nil {
		if m.Min != nil || m.Max != nil {
			return fmt.Errorf("metric %s: relative and min/max together: make them two metrics", m.Name)
		}
		return checkRelative(m)
	}
	if !m.isLatency() {
		switch {
		case m.Max != nil:
			return fmt.Errorf("metric %s takes min (a success rate in percent), not max", m.Name)
		case m.Min == nil:
			return fmt.Errorf("metric %s has no min", m.Name)
		case !(*m.Min > 0 && *m.Min < 100):
			return fmt.Errorf("metric %s: min %g: want a percentage above 0 and below 100", m.Name, *m.Min)
		}
		return nil
	}
	switch {
	case m.Min != nil:
		return fmt.Errorf("metric %s takes max (milliseconds), not min", m.Name)
	case m.Max == nil:
		return fmt.Errorf("metric %s has no max", m.Name)
	case !(*m.Max > 0):
		return fmt.Errorf("metric %s: max %g: want milliseconds above 0", m.Name, *m.Max)
	}
	if m.decision() == DecisionSequential && !isIstioBucket(*m.Max) {
		return fmt.Errorf("metric %s: max %g ms is not a bucket bound of istio_request_duration_milliseconds (%s), and the sequential test counts slow requests by bucket: pick a bound or set decision: threshold",
			m.Name, *m.Max, formatBuckets())
	}
	return nil
}

func checkRelative(m Metric) error {
	r := m.Relative
	if m.isLatency() {
		if r.MaxDrop != 0 {
			return fmt.Errorf("metric %s: relative maxDrop is for %s; a duration takes maxRatio", m.Name, SuccessRate)
		}
		if !(r.MaxRatio >= 1) || math.IsInf(r.MaxRatio, 0) {
			return fmt.Errorf("metric %s: relative maxRatio %g: want a finite number of at least 1", m.Name, r.MaxRatio)
		}
		return nil
	}
	if r.MaxRatio != 0 {
		return fmt.Errorf("metric %s: relative maxRatio is for durations; a success rate takes maxDrop", m.Name)
	}
	if !(r.MaxDrop >= 0 && r.MaxDrop < 100) {
		return fmt.Errorf("metric %s: relative maxDrop %g: want percentage points from 0 to below 100", m.Name, r.MaxDrop)
	}
	return nil
}

func checkCustom(m Metric) error {
	switch {
	case m.Relative != nil:
		return fmt.Errorf("metric %s: relative applies to the built-in metrics; a custom query compares with {{ stable }} itself", m.Name)
	case m.Min == nil && m.Max == nil:
		return fmt.Errorf("metric %s has neither min nor max", m.Name)
	}
	return nil
}

// templatesOf lists every template a check of m runs.
func templatesOf(m Metric) []string {
	tpls := []string{valueTemplate(m)}
	if m.builtin() {
		total, bad := countTemplates(m)
		tpls = append(tpls, total)
		if bad != "" {
			tpls = append(tpls, bad)
		}
	}
	return tpls
}

// parseTemplate renders tpl and parses it with Prometheus's parser. It
// must give an instant vector or a scalar: a check compares one number.
func parseTemplate(tpl string, vs map[string]string) (string, error) {
	r, err := render(tpl, vs)
	if err != nil {
		return "", err
	}
	expr, err := promqlParser.ParseExpr(r.query)
	if err != nil {
		return "", r.parseError(tpl, err)
	}
	switch t := expr.Type(); t {
	case parser.ValueTypeVector, parser.ValueTypeScalar:
	case parser.ValueTypeMatrix:
		return "", errors.New("query gives a range vector: want an instant vector or a scalar")
	default:
		return "", fmt.Errorf("query gives a %s: want an instant vector or a scalar", t)
	}
	return r.query, nil
}

// parseError is the parser's first error, positioned in the template.
func (r rendered) parseError(tpl string, err error) error {
	var pe *parser.ParseErr
	if errs, ok := errors.AsType[parser.ParseErrors](err); ok && len(errs) > 0 {
		pe = &errs[0]
	} else if e, ok := errors.AsType[*parser.ParseErr](err); ok {
		pe = e
	} else {
		return fmt.Errorf("parse error: %v", err)
	}
	line, col := lineCol(tpl, r.templateOffset(int(pe.PositionRange.Start)))
	msg := strings.ReplaceAll(pe.Err.Error(), "\n", " ")
	return fmt.Errorf("%d:%d: parse error: %s", line, col, msg)
}

func formatBuckets() string {
	var s []string
	for _, b := range IstioBuckets {
		s = append(s, strconv.FormatFloat(b, 'f', -1, 64))
	}
	return strings.Join(s, ", ")
}

// describe names m for messages.
func describe(m Metric) string {
	switch {
	case !m.builtin():
		return "custom metric " + m.Name
	case m.Relative != nil:
		return "relative " + m.Name
	default:
		return m.Name
	}
}
