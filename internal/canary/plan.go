package canary

import (
	"slices"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/routes"
)

// Plan is how a canary proceeds: its steps and how each is judged.
type Plan struct {
	Steps []canarystate.Step
	canarystate.Analysis
}

// trafficAt is the split step i of steps asks for: a weight step its
// weight; pause, match and mirror steps keep the weight reached before
// them, with the match or the mirror added. The steps are the state's own,
// so a project file changed mid-canary cannot move its traffic.
func trafficAt(steps []canarystate.Step, i int) routes.Traffic {
	var t routes.Traffic
	for j := 0; j < i && j < len(steps); j++ {
		if steps[j].Kind == config.StepWeight {
			t.Weight = steps[j].Weight
		}
	}
	if i >= len(steps) {
		return t
	}
	switch s := steps[i]; s.Kind {
	case config.StepWeight:
		t.Weight = s.Weight
	case config.StepMatch:
		t.Match = s.Match
	case config.StepMirror:
		t.Mirror = s.Mirror
	}
	return t
}

// iterationsOf is how many passed intervals a step needs.
func iterationsOf(s canarystate.Step) int {
	if s.Kind == config.StepMatch && s.Iterations > 0 {
		return s.Iterations
	}
	return 1
}

func (p Plan) withDefaults() Plan {
	if p.Interval <= 0 {
		p.Interval = time.Minute
	}
	if p.CheckEvery <= 0 || p.CheckEvery > p.Interval {
		p.CheckEvery = min(p.Interval, 10*time.Second)
	}
	if p.MaxFailedChecks <= 0 {
		p.MaxFailedChecks = 2
	}
	if p.MaxNoDataChecks <= 0 {
		p.MaxNoDataChecks = 5
	}
	if p.MaxErrorChecks <= 0 {
		p.MaxErrorChecks = 5
	}
	return p
}

// WithInterval is the plan with analysis interval d, checked about a dozen
// times an interval: the sequential test can act on what each check shows.
func (p Plan) WithInterval(d time.Duration) Plan {
	p.Interval = d
	p.CheckEvery = max(time.Second, d/12)
	return p
}

// PlanFor resolves service's canary plan from the project file: its steps,
// metrics and limits, with the service's own settings over the project's.
// A metric the analysis cannot run is an errkind.BadInput error.
func PlanFor(p *config.Project, service string) (Plan, error) {
	c := p.CanaryFor(service)
	plan := Plan{Analysis: canarystate.Analysis{
		Interval:         time.Duration(c.Interval),
		MaxFailedChecks:  c.Thresholds.MaxFailedChecks,
		MaxNoDataChecks:  c.Analysis.MaxNoDataChecks,
		MaxErrorChecks:   c.Analysis.MaxErrorChecks,
		KeepInconclusive: c.Analysis.OnInconclusive == config.InconclusiveKeep,
	}}
	plan = plan.WithInterval(plan.Interval)
	for _, s := range c.Steps {
		step := canarystate.Step{Kind: s.Kind(), Weight: s.Weight, Match: s.Match, Iterations: s.Iterations, Mirror: s.Mirror}
		if s.Pause != nil {
			step.Pause = time.Duration(s.Pause.Duration)
		}
		plan.Steps = append(plan.Steps, step)
	}
	sequential := 0
	for _, cm := range c.Metrics {
		m := analysis.Metric{Name: cm.Name, Query: cm.Query, Min: cm.Min, Max: cm.Max, Relative: cm.Relative, OnNoData: cm.OnNoData, MinRequests: cm.MinRequests}
		if c.Analysis.Decision == analysis.DecisionThreshold {
			// Otherwise the analysis picks: the sequential test where a
			// metric has counts for it.
			m.Decision = analysis.DecisionThreshold
		}
		if cm.Name == analysis.Duration && cm.Quantile == 0.95 {
			m.Name = analysis.DurationP95
		}
		// The sequential latency test counts slow requests by histogram
		// bucket; a bound between buckets (say maxP95Latency: 300ms) is
		// judged by the threshold rule instead, as it always was.
		if m.Query == "" && m.Max != nil && (m.Name == analysis.Duration || m.Name == analysis.DurationP95) && !slices.Contains(analysis.IstioBuckets, *m.Max) {
			m.Decision = analysis.DecisionThreshold
		}
		if err := analysis.Validate(m); err != nil {
			return Plan{}, errkind.BadInputf("canary metric %s of %s: %w", cm.Name, service, err)
		}
		if m.Rule() == analysis.DecisionSequential {
			sequential++
		}
		plan.Metrics = append(plan.Metrics, m)
	}
	// Each sequential metric may fail a healthy canary with probability
	// alpha; sharing alpha among them keeps the canary's own bound.
	alpha := 1 - c.Analysis.Confidence
	if c.Analysis.Confidence == 0 {
		alpha = 1 - analysis.DefaultConfidence
	}
	plan.Sequential = analysis.Sequential{Confidence: 1 - alpha/float64(max(1, sequential))}
	return plan, nil
}
