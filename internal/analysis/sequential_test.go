package analysis

import (
	"math"
	"math/rand/v2"
	"testing"
)

// numericLogEvidence integrates the mixture likelihood ratio on a fine
// grid, in log space: the reference the closed form must match.
func numericLogEvidence(c Counts, p0, a, b float64) float64 {
	const steps = 200000
	h := (1 - p0) / steps
	logNum, logDen := math.Inf(-1), math.Inf(-1)
	for i := range steps {
		p := p0 + (float64(i)+0.5)*h
		w := (a-1)*math.Log(p) + (b-1)*math.Log1p(-p)
		logDen = logAdd(logDen, w)
		logNum = logAdd(logNum, w+c.Bad*math.Log(p)+(c.Requests-c.Bad)*math.Log1p(-p))
	}
	return logNum - logDen - c.Bad*math.Log(p0) - (c.Requests-c.Bad)*math.Log1p(-p0)
}

func logAdd(x, y float64) float64 {
	if x < y {
		x, y = y, x
	}
	if math.IsInf(y, -1) {
		return x
	}
	return x + math.Log1p(math.Exp(y-x))
}

func TestLogEvidenceMatchesIntegral(t *testing.T) {
	tests := []struct {
		c     Counts
		p0    float64
		prior [2]float64
	}{
		{Counts{0, 0}, 0.01, [2]float64{1, 19}},
		{Counts{1, 1}, 0.01, [2]float64{1, 19}},
		{Counts{60, 1}, 0.01, [2]float64{1, 19}},
		{Counts{30, 6}, 0.01, [2]float64{1, 19}},
		{Counts{600, 2}, 0.01, [2]float64{1, 19}},
		{Counts{5000, 5}, 0.01, [2]float64{1, 19}}, // healthy: the posterior's mass above p0 is tiny
		{Counts{20000, 600}, 0.01, [2]float64{1, 19}},
		{Counts{600, 45}, 0.05, [2]float64{1, 19}},
		{Counts{600, 45}, 0.05, [2]float64{0.5, 2}},
		{Counts{300, 2}, 0.001, [2]float64{2, 50}},
	}
	for _, tt := range tests {
		s := Sequential{PriorA: tt.prior[0], PriorB: tt.prior[1]}
		got := s.LogEvidence(tt.c, tt.p0)
		want := numericLogEvidence(tt.c, tt.p0, tt.prior[0], tt.prior[1])
		if math.Abs(got-want) > 1e-4*math.Max(1, math.Abs(want)) {
			t.Errorf("LogEvidence(%v, p0=%g, Beta%v) = %.6f, integral %.6f", tt.c, tt.p0, tt.prior, got, want)
		}
	}
}

// TestEvidenceThinEvidence: at the defaults, one error never fails a
// canary, however few requests it has seen.
func TestEvidenceThinEvidence(t *testing.T) {
	var s Sequential
	for n := 1.0; n <= 10000; n++ {
		if ev, failed := s.Exceeds(Counts{n, 1}, 0.01); failed {
			t.Fatalf("1 error in %g requests fails (evidence %g)", n, ev)
		}
		if ev, failed := s.Exceeds(Counts{n, 2}, 0.01); n >= 2 && failed {
			t.Fatalf("2 errors in %g requests fail (evidence %g)", n, ev)
		}
	}
}

// TestIntervalCovers: the confidence sequence holds the true rate
// throughout a run, in at least 1-alpha of runs.
func TestIntervalCovers(t *testing.T) {
	s := Sequential{}
	r := rand.New(rand.NewPCG(7, 7))
	const runs, alpha = 300, 0.05
	missed := 0
	for range runs {
		p := 0.002 + 0.1*r.Float64()
		var c Counts
		for step := range 200 {
			for range 20 {
				c.Requests++
				if r.Float64() < p {
					c.Bad++
				}
			}
			if step%5 == 0 {
				if lo, hi := s.Interval(c, alpha); p < lo || p > hi {
					missed++
					break
				}
			}
		}
	}
	if float64(missed)/runs > alpha {
		t.Errorf("the interval missed the true rate in %d of %d runs, more than alpha %g", missed, runs, alpha)
	}
}

// TestFalseFailuresUnderContinuousLooks simulates healthy canaries checked
// every 5 s for an hour at 1 and 10 requests a second: the share failed
// must stay below alpha. The rate is the threshold itself, the worst case
// the bound covers, and a rate well below it.
func TestFalseFailuresUnderContinuousLooks(t *testing.T) {
	tests := []struct {
		name      string
		rate, rps float64
		runs      int
	}{
		{"at the threshold, 1 rps", 0.01, 1, 400},
		{"at the threshold, 10 rps", 0.01, 10, 200},
		{"healthy 0.2%, 1 rps", 0.002, 1, 400},
	}
	s := Sequential{} // alpha 0.01 against p0 0.01 (a 99% success rate)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 42))
			failed := 0
			for range tt.runs {
				var c Counts
				for sec := 1; sec <= 3600; sec++ {
					n := poisson(r, tt.rps)
					c.Requests += n
					c.Bad += binomial(r, n, tt.rate)
					if sec%5 == 0 {
						if _, exceeded := s.Exceeds(c, 0.01); exceeded {
							failed++
							break
						}
					}
				}
			}
			// A binomial margin over alpha: 3 standard deviations.
			alpha := s.Alpha()
			limit := alpha + 3*math.Sqrt(alpha*(1-alpha)/float64(tt.runs))
			if share := float64(failed) / float64(tt.runs); share > limit {
				t.Errorf("%d of %d healthy canaries failed (%.3f), above alpha %g (limit %.3f)", failed, tt.runs, share, alpha, limit)
			}
			t.Logf("%d of %d failed", failed, tt.runs)
		})
	}
}

func poisson(r *rand.Rand, mean float64) float64 {
	l, k, p := math.Exp(-mean), 0.0, 1.0
	for {
		p *= r.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

func binomial(r *rand.Rand, n, p float64) float64 {
	x := 0.0
	for range int(n) {
		if r.Float64() < p {
			x++
		}
	}
	return x
}
