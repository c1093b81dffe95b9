package analysis

import (
	"fmt"
	"math"
)

// Sequential holds the parameters of the sequential test. Its zero value
// means the defaults.
type Sequential struct {
	// Confidence is 1 - alpha: a canary no worse than its threshold is
	// failed with probability at most alpha over its whole run, however
	// often it is checked. Default 0.99.
	Confidence float64 `json:"confidence,omitempty"`
	// PriorA and PriorB are the Beta(a, b) distribution that mixes the bad
	// error rates the test looks for; the absolute test uses its part above
	// the threshold. Default Beta(1, 19): mean 5%, so a few percent of
	// errors is found fast while a single error among few requests is never
	// enough to fail.
	PriorA float64 `json:"priorA,omitempty"`
	PriorB float64 `json:"priorB,omitempty"`
}

// Defaults of Sequential.
const (
	DefaultConfidence = 0.99
	DefaultPriorA     = 1
	DefaultPriorB     = 19
)

func (s Sequential) withDefaults() Sequential {
	if s.Confidence == 0 {
		s.Confidence = DefaultConfidence
	}
	if s.PriorA == 0 {
		s.PriorA = DefaultPriorA
	}
	if s.PriorB == 0 {
		s.PriorB = DefaultPriorB
	}
	return s
}

// Alpha is the false-failure probability, 1 - Confidence.
func (s Sequential) Alpha() float64 {
	// Rounded so that 0.99 gives 0.01, not 0.010000000000000009.
	return math.Round((1-s.withDefaults().Confidence)*1e12) / 1e12
}

// Validate checks the parameters' ranges.
func (s Sequential) Validate() error {
	s = s.withDefaults()
	switch {
	case !(s.Confidence > 0.5 && s.Confidence < 1):
		return fmt.Errorf("confidence %g: want more than 0.5 and less than 1", s.Confidence)
	case !(s.PriorA > 0) || math.IsInf(s.PriorA, 0):
		return fmt.Errorf("prior a %g: want a positive number", s.PriorA)
	case !(s.PriorB > 0) || math.IsInf(s.PriorB, 0):
		return fmt.Errorf("prior b %g: want a positive number", s.PriorB)
	}
	return nil
}

// Counts are requests and the bad ones among them (5xx responses, or
// requests slower than a latency threshold), both cumulative since the
// canary's analysis started.
type Counts struct {
	Requests, Bad float64
}

// Rate is Bad/Requests, NaN without requests.
func (c Counts) Rate() float64 {
	if c.Requests <= 0 {
		return math.NaN()
	}
	return c.Bad / c.Requests
}

// whole rounds counts to whole requests: Prometheus's increase
// extrapolates to the window's edges, so it reports fractions.
func (c Counts) whole() Counts {
	n := math.Max(0, math.Round(c.Requests))
	x := math.Min(n, math.Max(0, math.Round(c.Bad)))
	return Counts{Requests: n, Bad: x}
}

// Evidence is the mixture likelihood ratio that the bad-request rate
// exceeds p0, against exactly p0: the ratio of the probability of the
// counts when the rate is drawn from the prior above p0 to their
// probability at p0. Its logarithm is returned.
//
// For a rate p <= p0 every bad rate p' > p0 of the mixture makes each
// request's factor (p'/p0 or (1-p')/(1-p0)) have expectation at most 1, so
// the ratio is a nonnegative supermartingale over the sequence of requests;
// by Ville's inequality it ever reaches 1/alpha with probability at most
// alpha, whenever and however often it is looked at.
func (s Sequential) LogEvidence(c Counts, p0 float64) float64 {
	s = s.withDefaults()
	c = c.whole()
	n, x := c.Requests, c.Bad
	a, b := s.PriorA, s.PriorB
	// Beta(a, b) truncated to (p0, 1): the posterior's normalising constant
	// over the prior's, both restricted to p > p0.
	logPost := logBeta(a+x, b+n-x) + logIncBeta(1-p0, b+n-x, a+x)
	logPrior := logBeta(a, b) + logIncBeta(1-p0, b, a)
	logNull := x*math.Log(p0) + (n-x)*math.Log1p(-p0)
	return logPost - logPrior - logNull
}

// Exceeds reports whether the counts show, at the configured confidence,
// that the bad-request rate is above p0, with the evidence ratio behind it.
func (s Sequential) Exceeds(c Counts, p0 float64) (evidence float64, exceeded bool) {
	l := s.LogEvidence(c, p0)
	return math.Exp(l), l >= -math.Log(s.Alpha())
}

// Interval is the anytime-valid confidence sequence for a bad-request
// rate at level 1-alpha: the rates p whose likelihood ratio of the Beta
// mixture against p is below 1/alpha. For the true rate that ratio is a
// nonnegative martingale, so the interval misses it at any time of the
// canary with probability at most alpha.
func (s Sequential) Interval(c Counts, alpha float64) (lo, hi float64) {
	s = s.withDefaults()
	c = c.whole()
	n, x := c.Requests, c.Bad
	if n == 0 {
		return 0, 1
	}
	marginal := logBeta(s.PriorA+x, s.PriorB+n-x) - logBeta(s.PriorA, s.PriorB)
	logRatio := func(p float64) float64 {
		return marginal - x*math.Log(p) - (n-x)*math.Log1p(-p)
	}
	bound := -math.Log(alpha)
	// The ratio is convex in p with its minimum (at most 1) at x/n, so each
	// end is one bisection.
	mid := x / n
	lo, hi = 0, 1
	if x > 0 {
		lo = bisect(func(p float64) bool { return logRatio(p) < bound }, 0, mid)
	}
	if x < n {
		hi = 1 - bisect(func(q float64) bool { return logRatio(1-q) < bound }, 0, 1-mid)
	}
	return lo, hi
}

// bisect finds where inside flips from false (at lo) to true (at hi).
func bisect(inside func(float64) bool, lo, hi float64) float64 {
	for range 100 {
		m := (lo + hi) / 2
		if m == lo || m == hi {
			break
		}
		if inside(m) {
			hi = m
		} else {
			lo = m
		}
	}
	return hi
}

// WorseThan reports whether the canary's bad-request rate is shown, at the
// configured confidence, to exceed the stable's by more than margin (a
// fraction: 0.005 for half a percentage point). It spends alpha/2 on each
// workload's confidence sequence: the canary's lower end above the stable's
// upper end plus the margin can only happen when one of them misses its
// true rate.
func (s Sequential) WorseThan(canary, stable Counts, margin float64) (canaryLo, stableHi float64, worse bool) {
	alpha := s.Alpha() / 2
	canaryLo, _ = s.Interval(canary, alpha)
	_, stableHi = s.Interval(stable, alpha)
	return canaryLo, stableHi, canaryLo > stableHi+margin
}
