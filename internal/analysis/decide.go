package analysis

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Decision is what one check concluded.
type Decision string

const (
	// Pass: the canary is within its threshold; the weight may advance.
	Pass Decision = "pass"
	// Fail: the canary is worse than its threshold. Under the sequential
	// rule it is final; under the threshold rule the driver counts it
	// against maxFailedChecks.
	Fail Decision = "fail"
	// Hold: there is traffic but not yet enough evidence either way (the
	// sequential rule only); the weight stays and the check is repeated.
	Hold Decision = "hold"
	// NoData: no result, NaN, or fewer requests than minRequests, with
	// onNoData: hold. The weight stays; the driver counts these against
	// maxNoDataChecks.
	NoData Decision = "no-data"
	// Error: Prometheus unreachable or the query failed. The weight stays.
	Error Decision = "error"
)

// Observation is what a check read from Prometheus: the whole input of a
// decision, so that explain and replay can decide again from a record.
type Observation struct {
	// Value is the metric over the last interval (for a relative check,
	// the canary's); Stable is the stable's over the same interval.
	Value, Stable Sample
	// Window is the canary's requests and bad requests (5xx, or slower
	// than the latency threshold) over the last interval.
	Window Counts
	// Total and StableTotal are the canary's and the stable's counts since
	// the analysis started, for the sequential rule.
	Total, StableTotal Counts
	// StableAt is when Stable was read, when not with Value: the end of
	// the stable's last interval with traffic.
	StableAt time.Time
}

// Verdict is a decision with the numbers behind it.
type Verdict struct {
	Decision Decision
	Reason   string
	// NoData is true when the data was missing or too thin, whatever
	// onNoData then made of it.
	NoData bool
	// Min and Max are the bounds the value was held to; for a relative
	// check they are derived from the stable's value.
	Min, Max *float64
	// Evidence is the sequential test's likelihood ratio (absolute checks)
	// against its bar of 1/alpha; 0 under the threshold rule.
	Evidence float64
}

// Decide applies m's rule to what was observed. It is pure: the same
// observation always gives the same verdict.
func Decide(m Metric, o Observation, s Sequential) Verdict {
	s = s.withDefaults()
	var v Verdict
	v.Min, v.Max = bounds(m, o)
	if m.decision() == DecisionSequential {
		var failed bool
		v.Evidence, failed, v.Reason = sequentialFail(m, o, s)
		if failed {
			v.Decision = Fail
			return v
		}
	}
	if reason, none := noData(m, o); none {
		v.NoData = true
		switch m.onNoData() {
		case OnNoDataFail:
			v.Decision, v.Reason = Fail, reason+"; onNoData: fail"
		case OnNoDataPass:
			v.Decision, v.Reason = Pass, reason+"; onNoData: pass"
		default:
			v.Decision, v.Reason = NoData, reason+"; holding"
		}
		return v
	}
	within, what := pointEstimate(m, o, v.Min, v.Max)
	switch {
	case within:
		v.Decision, v.Reason = Pass, what
	case m.decision() == DecisionThreshold:
		v.Decision, v.Reason = Fail, what
	default:
		v.Decision, v.Reason = Hold, what+", but "+v.Reason+": holding"
	}
	return v
}

// bounds are the limits the interval's value must keep.
func bounds(m Metric, o Observation) (lo, hi *float64) {
	r := m.Relative
	switch {
	case r == nil:
		return m.Min, m.Max
	case !o.Stable.OK:
		return nil, nil
	case m.isLatency():
		return nil, ptr(o.Stable.Value * r.MaxRatio)
	default:
		return ptr(o.Stable.Value - r.MaxDrop), nil
	}
}

// sequentialFail runs the sequential test on the counts since the start.
// When it does not fail, reason says how far the evidence is from failing.
func sequentialFail(m Metric, o Observation, s Sequential) (evidence float64, failed bool, reason string) {
	conf := pct(s.Confidence * 100)
	if m.Relative != nil {
		// Relative success rate; relative latency has no sequential rule.
		margin := m.Relative.MaxDrop / 100
		lo, hi, worse := s.WorseThan(o.Total, o.StableTotal, margin)
		c, st := o.Total.whole(), o.StableTotal.whole()
		detail := fmt.Sprintf("canary error rate at least %s%% (%s of %s requests since the start) against the stable's at most %s%% (%s of %s) with %s%% confidence",
			pct(lo*100), count(c.Bad), count(c.Requests), pct(hi*100), count(st.Bad), count(st.Requests), conf)
		if worse {
			return 0, true, detail + fmt.Sprintf(": more than %s points worse", pct(m.Relative.MaxDrop))
		}
		return 0, false, detail + fmt.Sprintf(" is not shown more than %s points worse", pct(m.Relative.MaxDrop))
	}
	p0, bad, rate := nullRate(m)
	ev, exceeded := s.Exceeds(o.Total, p0)
	c := o.Total.whole()
	bar := 1 / s.Alpha()
	detail := fmt.Sprintf("%s of %s requests %s since the start (%s%%)", count(c.Bad), count(c.Requests), bad, pct(100*c.Rate()))
	if exceeded {
		return ev, true, fmt.Sprintf("%s: evidence %s >= %s (%s%% confidence) that more than %s%% are %s (%s)",
			detail, num(ev), num(bar), conf, pct(100*p0), bad, rate)
	}
	return ev, false, fmt.Sprintf("evidence %s < %s that more than %s%% are %s (%s)", num(ev), num(bar), pct(100*p0), bad, rate)
}

// nullRate is the bad-request rate the absolute threshold allows, with
// words for messages.
func nullRate(m Metric) (p0 float64, bad, rate string) {
	if m.isLatency() {
		q := m.quantile()
		return 1 - q, "slower than " + num(*m.Max) + " ms", fmt.Sprintf("P%s above %s ms", pct(q*100), num(*m.Max))
	}
	// Say what was counted: a gRPC failure is no 5xx.
	return 1 - *m.Min/100, "failed", fmt.Sprintf("success rate below %s%%; failed: HTTP 5xx, a gRPC server error or no ready pod", pct(*m.Min))
}

// noData says why o is too thin to judge, if it is.
func noData(m Metric, o Observation) (reason string, none bool) {
	w := o.Window.whole()
	switch {
	case m.builtin() && w.Requests == 0:
		return "no canary requests in the last interval", true
	case m.builtin() && w.Requests < float64(m.MinRequests):
		return fmt.Sprintf("%s canary requests in the last interval, fewer than minRequests %d", count(w.Requests), m.MinRequests), true
	case !o.Value.OK:
		return "the query gave no data (an empty result or NaN)", true
	case m.Relative != nil && !o.Stable.OK:
		return "the stable's query gave no data (an empty result or NaN)", true
	}
	return "", false
}

// pointEstimate holds the interval's value to its bounds and says so.
func pointEstimate(m Metric, o Observation, lo, hi *float64) (within bool, reason string) {
	val := o.Value.Value
	var subject string
	w := o.Window.whole()
	switch {
	case !m.builtin():
		subject = fmt.Sprintf("%s %s", m.Name, num(val))
	case m.isLatency():
		subject = fmt.Sprintf("P%s %s ms (%s requests)", pct(m.quantile()*100), num(val), count(w.Requests))
	default:
		subject = fmt.Sprintf("success rate %s%% (%s of %s requests)", pct(val), count(w.Requests-w.Bad), count(w.Requests))
	}
	unit := ""
	if m.builtin() && !m.isLatency() {
		unit = "%"
	} else if m.isLatency() {
		unit = " ms"
	}
	of := " threshold"
	if m.Relative != nil {
		if m.isLatency() {
			of = fmt.Sprintf(" (%sx the stable's %s ms)", num(m.Relative.MaxRatio), num(o.Stable.Value))
		} else {
			of = fmt.Sprintf(" (the stable's %s%% less %s points)", pct(o.Stable.Value), pct(m.Relative.MaxDrop))
		}
		if !o.StableAt.IsZero() {
			of = strings.TrimSuffix(of, ")") + fmt.Sprintf(", the stable's over its last interval with traffic, to %s)", o.StableAt.UTC().Format(time.TimeOnly))
		}
	}
	// NaN never gets here, so the comparisons are total; +Inf (a quantile
	// in the +Inf bucket) is above any max.
	switch {
	case lo != nil && val < *lo:
		return false, fmt.Sprintf("%s < %s%s%s", subject, num(*lo), unit, of)
	case hi != nil && val > *hi:
		return false, fmt.Sprintf("%s > %s%s%s", subject, num(*hi), unit, of)
	case lo != nil && hi != nil:
		return true, fmt.Sprintf("%s within %s..%s%s", subject, num(*lo), num(*hi), unit)
	case lo != nil:
		return true, fmt.Sprintf("%s >= %s%s%s", subject, num(*lo), unit, of)
	default:
		return true, fmt.Sprintf("%s <= %s%s%s", subject, num(*hi), unit, of)
	}
}

func ptr(f float64) *float64 { return &f }

// num writes a value with at most 3 decimals and no trailing zeros.
func num(f float64) string {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	if math.Abs(f) >= 1e6 {
		return strconv.FormatFloat(f, 'g', 4, 64)
	}
	return strconv.FormatFloat(math.Round(f*1000)/1000, 'f', -1, 64)
}

// pct writes a percentage with at most 2 decimals.
func pct(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return strconv.FormatFloat(math.Round(f*100)/100, 'f', -1, 64)
}

// count writes a whole number of requests.
func count(f float64) string { return strconv.FormatFloat(math.Round(f), 'f', 0, 64) }
