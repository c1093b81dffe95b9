package analysis

import "math"

// The special functions the sequential test needs, in log space so that
// hundreds of thousands of requests neither overflow nor underflow.

// logBeta is log B(a, b).
func logBeta(a, b float64) float64 {
	la, _ := math.Lgamma(a)
	lb, _ := math.Lgamma(b)
	lab, _ := math.Lgamma(a + b)
	return la + lb - lab
}

// logIncBeta is the log of the regularized incomplete beta function
// I_x(a, b), the Beta(a, b) distribution's mass below x.
func logIncBeta(x, a, b float64) float64 {
	switch {
	case x <= 0:
		return math.Inf(-1)
	case x >= 1:
		return 0
	}
	// The continued fraction converges quickly only below the mean; above
	// it, I_x(a, b) = 1 - I_{1-x}(b, a).
	if x < (a+1)/(a+b+2) {
		return logIncBetaCF(x, a, b)
	}
	return log1mExp(logIncBetaCF(1-x, b, a))
}

// logIncBetaCF evaluates I_x(a, b) by its continued fraction (modified
// Lentz), valid and fast for x < (a+1)/(a+b+2).
func logIncBetaCF(x, a, b float64) float64 {
	const (
		tiny = 1e-300
		eps  = 1e-15
	)
	front := a*math.Log(x) + b*math.Log1p(-x) - math.Log(a) - logBeta(a, b)
	c, d := 1.0, 1-(a+b)*x/(a+1)
	if math.Abs(d) < tiny {
		d = tiny
	}
	d = 1 / d
	f := d
	// The number of terms grows like the square root of a+b; the cap is
	// far above what a canary's counts need.
	for m := 1; m < 1_000_000; m++ {
		fm := float64(m)
		for _, num := range [2]float64{
			fm * (b - fm) * x / ((a + 2*fm - 1) * (a + 2*fm)),
			-(a + fm) * (a + b + fm) * x / ((a + 2*fm) * (a + 2*fm + 1)),
		} {
			d = 1 + num*d
			if math.Abs(d) < tiny {
				d = tiny
			}
			c = 1 + num/c
			if math.Abs(c) < tiny {
				c = tiny
			}
			d = 1 / d
			f *= d * c
		}
		if math.Abs(d*c-1) < eps {
			break
		}
	}
	return front + math.Log(f)
}

// log1mExp is log(1 - e^x) for x <= 0, accurate at both ends.
func log1mExp(x float64) float64 {
	if x > -math.Ln2 {
		return math.Log(-math.Expm1(x))
	}
	return math.Log1p(-math.Exp(x))
}
