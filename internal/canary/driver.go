package canary

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/routes"
)

// Driver drives one service's canary.
type Driver struct {
	Service  string
	Store    canarystate.Store
	Traffic  Traffic
	Releases Releases
	Analyzer *analysis.Analyzer
	Target   analysis.Target
	// Plan is the plan of a new canary, from the project file; a canary in
	// progress goes on with the one pinned in its state.
	Plan Plan
	// NoPlan, when set, says why the project file gave no plan: a new
	// canary is refused with it, while one in progress (abort, promote,
	// resume) goes on with its own.
	NoPlan error
	Lock   Lock
	// Events hears what happens; nil hears nothing.
	Events func(Event)
	// Now and Sleep are the clock; Tick is how often the driver reads its
	// state for requests from other processes (promote, pause, abort), so
	// it acts on them within about a Tick.
	Now   func() time.Time
	Sleep func(ctx context.Context, d time.Duration) error
	Tick  time.Duration
	// Drain is how long the canary's workload outlives its last request
	// route: the mesh takes a moment to apply a route, and requests sent
	// to a workload already gone would fail.
	Drain time.Duration

	st  *canarystate.State
	ver string
	// lastCheck is when the metrics were last checked by this process.
	lastCheck time.Time
}

// RunOptions tune one run of the driver.
type RunOptions struct {
	// Image starts a canary at this image when none runs; zero resumes the
	// one that runs.
	Image imageref.Ref
	// WaitForApproval waits at a manual gate or pause instead of
	// returning with the Paused outcome.
	WaitForApproval bool
	// Timeout bounds the whole canary, from when it started (a resumed
	// canary keeps its budget), less the time a person paused it or no
	// driver ran: past it, the canary is rolled back (unless
	// KeepOnTimeout) and the outcome says it timed out. 0 is none.
	Timeout       time.Duration
	KeepOnTimeout bool
	// Once carries out pending requests and what they start (a rollback, a
	// promotion), sets up a new canary's first step, and returns without
	// waiting for analysis: what start, promote, pause, resume and abort do.
	Once bool
}

// Run drives the canary until it ends, pauses (unless WaitForApproval), or
// times out, and returns the last state with the outcome as an error
// (*OutcomeError) when it did not succeed. Bad input (nothing to resume,
// another canary in progress) is an errkind.BadInput error with no state.
func (d *Driver) Run(ctx context.Context, o RunOptions) (_ *canarystate.State, err error) {
	d.defaults()
	done, err := d.begin(ctx, o)
	if err != nil {
		if errkind.Of(err) == errkind.BadInput {
			return nil, err
		}
		return d.st, err
	}
	if done {
		return d.st, nil
	}
	defer func() {
		// A run that ends on an error leaves no driver named in the
		// state, or status would show one that is gone. A lost lock
		// refuses the write, as it should.
		if err != nil && d.st != nil && d.st.Driver == d.Lock.Holder() {
			_ = d.letGo(context.WithoutCancel(ctx))
		}
	}()
	timedOut := false
	applied := false
	for {
		if err := ctx.Err(); err != nil {
			return d.st, err
		}
		if err := d.reload(ctx); err != nil {
			return d.st, err
		}
		if d.st == nil {
			return nil, fmt.Errorf("the canary state of %s was deleted while the canary ran; its traffic and workloads are as they were: msctl status %s shows them", d.Service, d.Service)
		}
		st := d.st
		if o.Timeout > 0 && st.Phase == canarystate.Progressing && !d.Now().Before(st.StartedAt.Add(o.Timeout+st.Waited+st.Unwatched)) {
			timedOut = true
			if o.KeepOnTimeout {
				if err := d.letGo(ctx); err != nil {
					return d.st, err
				}
				return st, &OutcomeError{Service: d.Service, Phase: st.Phase, TimedOut: true,
					Reason: "timed out; the canary stays in place (--keep-on-timeout)"}
			}
			if err := d.rollBack(ctx, canarystate.RolledBack, fmt.Sprintf("not finished within --timeout %s", o.Timeout)); err != nil {
				return d.st, err
			}
			continue
		}
		var wait time.Duration
		var err error
		switch {
		case st.Kept && st.Request != nil:
			err = d.handle(ctx, st.Request)
		case st.Phase.Terminal():
			if err := d.letGo(ctx); err != nil {
				return d.st, err
			}
			out := Outcome(d.st)
			var oe *OutcomeError
			if timedOut && errors.As(out, &oe) {
				oe.TimedOut = true
			}
			return d.st, out
		case st.Phase == canarystate.RollingBack:
			err = d.finishRollBack(ctx)
		case st.Phase == canarystate.Promoting && st.Request != nil && st.Request.Action == canarystate.ActionAbort:
			// The stable may not have taken the canary's image: going back
			// is still possible, and asked for.
			err = d.handle(ctx, st.Request)
		case st.Phase == canarystate.Promoting:
			err = d.finishPromotion(ctx)
		case st.Phase == canarystate.Paused:
			if st.Request != nil {
				err = d.handle(ctx, st.Request)
				break
			}
			if o.Once || !o.WaitForApproval {
				if err := d.letGo(ctx); err != nil {
					return d.st, err
				}
				return d.st, Outcome(d.st)
			}
			// A canary waiting for a person keeps its traffic, so it is
			// watched as at any step.
			wait, err = d.watch(ctx)
		case st.Phase == canarystate.Progressing:
			if st.Request != nil {
				err = d.handle(ctx, st.Request)
				break
			}
			if !applied {
				// Once per run: a killed driver may have written a step and
				// died before acting on it.
				if err = d.setUp(ctx); err != nil {
					break
				}
				applied = true
			}
			if o.Once {
				return d.st, d.letGo(ctx)
			}
			wait, err = d.progress(ctx)
		}
		if errors.Is(err, errStale) {
			continue
		}
		if err != nil {
			return d.st, err
		}
		if wait > 0 {
			if err := d.Sleep(ctx, min(wait, d.Tick)); err != nil {
				return d.st, err
			}
		}
	}
}

func (d *Driver) defaults() {
	d.Plan = d.Plan.withDefaults()
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Sleep == nil {
		d.Sleep = sleep
	}
	if d.Tick <= 0 {
		d.Tick = 500 * time.Millisecond
	}
	if d.Events == nil {
		d.Events = func(Event) {}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// begin loads the canary, starts one when none runs and an image is given,
// and records this process as its driver. done is true when there is
// nothing to do: the same image was already promoted (a CI job retried
// after its canary succeeded).
func (d *Driver) begin(ctx context.Context, o RunOptions) (done bool, err error) {
	if err := d.reload(ctx); err != nil {
		return false, err
	}
	zero := o.Image == imageref.Ref{}
	switch {
	case (d.st == nil || !d.st.Open()) && zero:
		return false, errkind.BadInputf("no canary of %s is in progress; give --tag or --image to start one", d.Service)
	case d.st == nil || !d.st.Open():
		if d.NoPlan != nil {
			return false, d.NoPlan
		}
		if err := d.start(ctx, o.Image); errors.Is(err, errPromoted) {
			return true, nil
		} else if err != nil {
			return false, err
		}
	case !zero && o.Image.String() != d.st.CanaryImage:
		return false, errkind.BadInputf("a canary of %s at %s is in progress (%s); promote or abort it before starting another",
			d.Service, d.st.CanaryImage, d.st.Phase)
	}
	switch {
	case d.st.Analysis != nil:
		d.Plan.Analysis = *d.st.Analysis
	case d.NoPlan != nil:
		// A state written before plans were pinned needs the file's.
		return false, d.NoPlan
	}
	d.Target.Interval, d.Analyzer.Sequential = d.Plan.Interval, d.Plan.Sequential
	holder := d.Lock.Holder()
	if d.st.Driver == holder {
		return false, nil
	}
	now := d.Now()
	return false, d.save(ctx, func(s *canarystate.State) {
		s.Driver, s.DriverSince = holder, now
		// A live driver writes at least every CheckEvery; beyond that,
		// nobody watched. Time paused by a person is counted as Waited.
		if s.Phase == canarystate.Progressing && !s.UpdatedAt.IsZero() {
			s.Unwatched += max(0, now.Sub(s.UpdatedAt)-d.Plan.CheckEvery)
		}
	})
}

// errStale says the state moved under a decision, which is then made
// again from the state as it is.
var errStale = errors.New("the canary state changed under a decision")

// errPromoted says the image asked for is the stable's because its canary
// was promoted: a retried job has nothing left to do.
var errPromoted = errors.New("already promoted")

// start writes a new canary at step 0; setUp then runs its workload and
// sets its traffic.
func (d *Driver) start(ctx context.Context, img imageref.Ref) error {
	if len(d.Plan.Steps) == 0 {
		return errkind.BadInputf("the canary of %s has no steps", d.Service)
	}
	stable, rev, err := d.Releases.Stable(ctx)
	if err != nil {
		return err
	}
	if stable.String() == img.String() {
		if d.st != nil && d.st.Phase == canarystate.Succeeded && d.st.CanaryImage == img.String() {
			return errPromoted
		}
		return errkind.BadInputf("%s already runs %s: nothing to canary", d.Service, img)
	}
	now := d.Now()
	if err := d.checkSpacing(ctx, now); err != nil {
		return err
	}
	pinned := d.Plan.Analysis
	next := &canarystate.State{
		Service: d.Service, Phase: canarystate.Progressing, Steps: d.Plan.Steps, Analysis: &pinned,
		StepStarted: now, IntervalStarted: now, AnalysisSince: now,
		CanaryImage: img.String(), StableImage: stable.String(), StableRevision: rev,
		StartedAt: now, UpdatedAt: now,
	}
	if d.st != nil {
		next.History = d.st.History
	}
	if err := d.Lock.Check(); err != nil {
		return err
	}
	ver, err := d.Store.Save(ctx, next, d.ver)
	if errors.Is(err, canarystate.ErrConflict) {
		return fmt.Errorf("the canary state of %s changed while starting; run again", d.Service)
	}
	if err != nil {
		return err
	}
	d.st, d.ver = next, ver
	d.emit("phase", fmt.Sprintf("canary of %s started: %s (stable %s revision %d)", d.Service, img, stable, rev))
	return nil
}

// checkSpacing refuses a new canary whose interval is too short for how
// often Prometheus samples the stable's requests: its every check would
// find no data and it would end Inconclusive. A spacing that cannot be
// measured (no stable traffic, Prometheus unreachable) refuses nothing:
// the checks say what they see.
func (d *Driver) checkSpacing(ctx context.Context, now time.Time) error {
	if d.Analyzer == nil {
		return nil
	}
	spacing, ok, err := d.Analyzer.ScrapeSpacing(ctx, d.Target, now)
	if err != nil || !ok {
		return nil
	}
	if msg := analysis.SpacingProblem(d.Plan.Analysis.Interval, spacing); msg != "" {
		return errkind.BadInputf("the canary of %s: %s", d.Service, msg)
	}
	return nil
}

// reload reads the state, to see requests other processes wrote.
func (d *Driver) reload(ctx context.Context) error {
	st, ver, err := d.Store.Load(ctx)
	if err != nil {
		return err
	}
	d.st, d.ver = st, ver
	return nil
}

// save applies change to the state and writes it by compare-and-swap,
// after checking the lock. On a conflict (another process wrote a
// request) it reloads and applies change again.
func (d *Driver) save(ctx context.Context, change func(*canarystate.State)) error {
	phase, step, iteration := d.st.Phase, d.st.Step, d.st.Iteration
	for range 10 {
		if err := d.Lock.Check(); err != nil {
			return err
		}
		next := *d.st
		change(&next)
		now := d.Now()
		next.UpdatedAt = now
		switch {
		case d.st.Phase != canarystate.Paused && next.Phase == canarystate.Paused:
			next.PausedAt = now
		case d.st.Phase == canarystate.Paused && next.Phase != canarystate.Paused:
			if !next.PausedAt.IsZero() {
				next.Waited += max(0, now.Sub(next.PausedAt))
			}
			next.PausedAt = time.Time{}
		}
		ver, err := d.Store.Save(ctx, &next, d.ver)
		if errors.Is(err, canarystate.ErrConflict) {
			if err := d.reload(ctx); err != nil {
				return err
			}
			if d.st == nil {
				return fmt.Errorf("the canary state of %s was deleted while the canary ran", d.Service)
			}
			// Only requests are written by others; a decision made on a
			// phase or step that has changed since is not applied.
			if d.st.Phase != phase || d.st.Step != step || d.st.Iteration != iteration {
				return errStale
			}
			continue
		}
		if err != nil {
			return err
		}
		d.st, d.ver = &next, ver
		return nil
	}
	return fmt.Errorf("the canary state of %s keeps changing; run again", d.Service)
}

func (d *Driver) emit(kind, msg string) {
	d.Events(Event{Time: d.Now(), Service: d.Service, Type: kind, Phase: d.st.Phase, Step: d.st.Step, Message: msg})
}

// letGo records that no process drives the canary any more.
func (d *Driver) letGo(ctx context.Context) error {
	if d.st.Driver == "" {
		return nil
	}
	return d.save(ctx, func(s *canarystate.State) { s.Driver, s.DriverSince = "", time.Time{} })
}

// setUp runs the canary workload and sets the current step's traffic: what
// a resumed driver does first, since a killed one may have written a step
// and died before acting on it.
func (d *Driver) setUp(ctx context.Context) error {
	img, err := imageref.Parse(d.st.CanaryImage)
	if err != nil {
		return err
	}
	if err := d.Lock.Check(); err != nil {
		return err
	}
	if err := d.deployCanary(ctx, img); err != nil {
		var transient *TransientError
		if ctx.Err() != nil || d.Lock.Check() != nil || errors.As(err, &transient) {
			// Not the canary's fault: it stays at its step for a rerun.
			return err
		}
		// A canary that does not run cannot pass: end it, or it would
		// keep the service from deploys until someone aborts it.
		return d.rollBack(ctx, canarystate.RolledBack, "the canary did not become ready: "+err.Error())
	}
	if err := d.setTraffic(ctx); err != nil {
		return err
	}
	// The interval starts with the canary's traffic, not when it was
	// written: its workload may have taken minutes to become ready.
	return d.save(ctx, func(s *canarystate.State) { s.IntervalStarted = d.Now() })
}

// deployRetries is how many times a transient failure to deploy the
// canary is retried, with 1, 2, 4 ... seconds between.
const deployRetries = 4

// deployCanary deploys the canary, retrying transient failures.
func (d *Driver) deployCanary(ctx context.Context, img imageref.Ref) error {
	var transient *TransientError
	wait := time.Second
	for attempt := 0; ; attempt++ {
		err := d.Releases.DeployCanary(ctx, img)
		if err == nil || !errors.As(err, &transient) || attempt == deployRetries {
			return err
		}
		d.emit("retry", fmt.Sprintf("deploying the canary failed (%v); retrying in %s", err, wait))
		if err := d.Sleep(ctx, wait); err != nil {
			return err
		}
		if err := d.Lock.Check(); err != nil {
			return err
		}
		wait *= 2
	}
}

// setTraffic sets the traffic of the step the state is at; the state says
// so first.
func (d *Driver) setTraffic(ctx context.Context) error {
	t := trafficAt(d.st.Steps, d.st.Step)
	want := canarystate.Traffic{Weight: t.Weight, Match: t.Match != nil, Mirror: t.Mirror}
	full := want.Weight == 100 && !want.Match
	if d.st.Traffic != want || full != !d.st.FullSince.IsZero() {
		now := d.Now()
		if err := d.save(ctx, func(s *canarystate.State) {
			s.Traffic = want
			switch {
			case !full:
				s.FullSince = time.Time{}
			case s.FullSince.IsZero():
				s.FullSince = now
			}
		}); err != nil {
			return err
		}
	}
	if err := d.Lock.Check(); err != nil {
		return err
	}
	if err := d.Traffic.Set(ctx, t); err != nil {
		return err
	}
	d.emit("traffic", describeTraffic(t))
	return nil
}

func describeTraffic(t routes.Traffic) string {
	msg := fmt.Sprintf("traffic %d%% canary, %d%% stable", t.Weight, 100-t.Weight)
	if t.Match != nil {
		msg += "; matching requests to the canary"
	}
	if t.Mirror > 0 {
		msg += fmt.Sprintf("; %d%% mirrored to the canary", t.Mirror)
	}
	return msg
}

// handle carries out a request another process wrote.
func (d *Driver) handle(ctx context.Context, r *canarystate.Request) error {
	st := d.st
	// Only this request: another may have been written since it was read.
	clear := func(s *canarystate.State) {
		if s.Request.Same(r) {
			s.Request = nil
		}
	}
	d.emit("action", fmt.Sprintf("%s requested by %s", r.Action, r.By))
	switch {
	case r.Action == canarystate.ActionAbort:
		return d.rollBackWith(ctx, canarystate.Aborted, "aborted by "+r.By, func(s *canarystate.State) { clear(s); s.Kept = false })
	case st.Kept && r.Action == canarystate.ActionPromote:
		return d.save(ctx, func(s *canarystate.State) {
			clear(s)
			s.Phase, s.Kept, s.Reason = canarystate.Promoting, false, "promoted by "+r.By+" after an inconclusive analysis"
		})
	case st.Kept || st.Phase == canarystate.Promoting:
		// Nothing else applies to a kept or a promoting canary.
		return d.save(ctx, clear)
	case r.Action == canarystate.ActionPause && st.Phase == canarystate.Progressing:
		return d.save(ctx, func(s *canarystate.State) {
			clear(s)
			s.Phase, s.Gate, s.Reason = canarystate.Paused, false, "paused by "+r.By
		})
	case r.Action == canarystate.ActionResume && st.Phase == canarystate.Paused && !st.Gate:
		return d.save(ctx, func(s *canarystate.State) {
			clear(s)
			s.Phase, s.Reason, s.IntervalStarted = canarystate.Progressing, "", d.Now()
		})
	case r.Action == canarystate.ActionPromote && r.Full:
		return d.save(ctx, func(s *canarystate.State) {
			clear(s)
			s.Phase, s.Gate, s.Reason = canarystate.Promoting, false, "promoted by "+r.By+" (--full: remaining steps skipped)"
		})
	case r.Action == canarystate.ActionPromote:
		// Past the gate, or past the current step's analysis.
		return d.nextStep(ctx, clear)
	}
	return d.save(ctx, clear) // nothing to do: resume of a running canary, pause of a paused one
}

// nextStep moves to the next step, or to promotion after the last one.
func (d *Driver) nextStep(ctx context.Context, also func(*canarystate.State)) error {
	now := d.Now()
	err := d.save(ctx, func(s *canarystate.State) {
		if also != nil {
			also(s)
		}
		s.Step++
		s.StepStarted, s.IntervalStarted, s.Iteration, s.Gate, s.Reason = now, now, 0, false, ""
		s.StepWaited, s.StepUnwatched = s.Waited, s.Unwatched
		s.Phase = canarystate.Progressing
		if s.Step >= len(s.Steps) {
			s.Step = len(s.Steps) - 1
			s.Phase = canarystate.Promoting
		}
	})
	if err != nil {
		return err
	}
	if d.st.Phase == canarystate.Promoting {
		d.emit("phase", "every step passed: promoting")
		return nil
	}
	d.emit("step", fmt.Sprintf("step %d of %d: %s", d.st.Step+1, len(d.st.Steps), d.st.CurrentStep()))
	return d.setTraffic(ctx)
}

// progress does what the current step needs now and says how long to wait
// before looking again.
func (d *Driver) progress(ctx context.Context) (time.Duration, error) {
	st := d.st
	now := d.Now()
	step := st.CurrentStep()
	if step.Kind == config.StepPause {
		if step.Pause == 0 {
			reason := fmt.Sprintf("awaiting approval at step %d of %d (msctl canary promote %s)", st.Step+1, len(st.Steps), d.Service)
			if err := d.save(ctx, func(s *canarystate.State) { s.Phase, s.Gate, s.Reason = canarystate.Paused, true, reason }); err != nil {
				return 0, err
			}
			d.emit("phase", reason)
			return 0, nil
		}
		waited := now.Sub(st.StepStarted) - (st.Waited - st.StepWaited) - (st.Unwatched - st.StepUnwatched)
		if left := step.Pause - waited; left > 0 {
			// The canary keeps its traffic while it waits, so it is
			// watched as closely.
			wait, err := d.watch(ctx)
			if err == nil && now.Sub(d.st.UpdatedAt) >= d.Plan.CheckEvery {
				// Say the canary is watched even with no check to write.
				err = d.save(ctx, func(*canarystate.State) {})
			}
			return min(left, wait, d.Plan.CheckEvery), err
		}
		return 0, d.nextStep(ctx, nil)
	}
	return d.analyse(ctx, true)
}

// watch analyses a canary held at a pause or a gate: a failure rolls it
// back as at any step. Only failures count there: a canary that waits has
// no step to advance, and an interval without data at a gate before any
// traffic moved is not a reason to end it.
func (d *Driver) watch(ctx context.Context) (time.Duration, error) {
	if d.st.Traffic == (canarystate.Traffic{}) {
		return d.Tick, nil // no canary traffic to judge
	}
	return d.analyse(ctx, false)
}

// analyse checks the metrics when a check is due, rolls back on the
// sequential test's failure, and judges the interval at its end (see
// endInterval for advance).
func (d *Driver) analyse(ctx context.Context, advance bool) (time.Duration, error) {
	now := d.Now()
	intervalEnd := d.st.IntervalStarted.Add(d.Plan.Interval)
	if now.Before(intervalEnd) && now.Sub(d.lastCheck) < d.Plan.CheckEvery {
		return min(d.Plan.CheckEvery-now.Sub(d.lastCheck), intervalEnd.Sub(now)), nil
	}
	checks, err := d.record(ctx, now)
	if err != nil {
		return 0, err
	}
	// The sequential test may fail a canary at any check: its bound holds
	// however often it is looked at.
	if failed := sequentialFailure(checks); failed != nil {
		return 0, d.rollBack(ctx, canarystate.RolledBack, failed.Metric+": "+failed.Reason)
	}
	if now.Before(intervalEnd) {
		return d.Plan.CheckEvery, nil
	}
	return 0, d.endInterval(ctx, checks, advance)
}

// window is when a check made now looks: the sequential counts since the
// analysis started, the point estimate within the current interval, and a
// relative check's stable before the canary took every request.
func (d *Driver) window(now time.Time) analysis.Window {
	return analysis.Window{Since: d.st.AnalysisSince, From: d.st.IntervalStarted, At: now, StableAt: d.st.FullSince}
}

// record checks every metric, keeps the checks in the state and tells them.
func (d *Driver) record(ctx context.Context, now time.Time) ([]analysis.Check, error) {
	checks := d.checkAll(ctx, now)
	if err := d.save(ctx, func(s *canarystate.State) { s.Record(checks...) }); err != nil {
		return nil, err
	}
	for i := range checks {
		d.Events(Event{Time: now, Service: d.Service, Type: "check", Phase: d.st.Phase, Step: d.st.Step,
			Message: fmt.Sprintf("%s: %s: %s", checks[i].Metric, checks[i].Decision, checks[i].Reason), Check: &checks[i]})
	}
	return checks, nil
}

// sequentialFailure is the first check the sequential test failed on its
// evidence. A failure for lack of data (onNoData: fail) is not evidence:
// it counts at the interval's end.
func sequentialFailure(checks []analysis.Check) *analysis.Check {
	for i, c := range checks {
		if c.Decision == analysis.Fail && c.Rule == analysis.DecisionSequential && !c.NoData {
			return &checks[i]
		}
	}
	return nil
}

// checkAll checks every metric once.
func (d *Driver) checkAll(ctx context.Context, now time.Time) []analysis.Check {
	d.lastCheck = now
	out := make([]analysis.Check, 0, len(d.Plan.Metrics))
	for _, m := range d.Plan.Metrics {
		out = append(out, d.Analyzer.Check(ctx, m, d.Target, d.window(now)))
	}
	return out
}

// endInterval judges an interval by the checks at its end: all passed
// moves on. A failure under the threshold rule counts against
// MaxFailedChecks over the whole canary, as Flagger's rule does. Intervals
// without a decision (no data, or a sequential test still gathering
// evidence) and intervals Prometheus did not answer count in a row: a
// passing interval clears them, so a slow healthy canary is not ended
// Inconclusive by a few scattered ones.
//
// A check that passed for lack of data (onNoData: pass) passes: that is
// what the setting asks for. With advance false (a canary held at a pause
// or a gate) only failures count, and the interval starts again.
func (d *Driver) endInterval(ctx context.Context, checks []analysis.Check, advance bool) error {
	var failed, noData, held, errored []analysis.Check
	for _, c := range checks {
		switch c.Decision {
		case analysis.Fail:
			failed = append(failed, c)
		case analysis.Error:
			errored = append(errored, c)
		case analysis.NoData:
			noData = append(noData, c)
		case analysis.Hold:
			held = append(held, c)
		}
	}
	now := d.Now()
	c := d.st.Counters
	switch {
	case !advance && len(failed) == 0:
	case len(failed) > 0:
		c.Failed++
		if c.Failed >= d.Plan.MaxFailedChecks {
			return d.rollBackWith(ctx, canarystate.RolledBack,
				fmt.Sprintf("%s: %s (%d failed checks, limit %d)", failed[0].Metric, failed[0].Reason, c.Failed, d.Plan.MaxFailedChecks),
				func(s *canarystate.State) { s.Counters = c })
		}
	case len(errored) > 0:
		c.Errors++
		if c.Errors >= d.Plan.MaxErrorChecks {
			return d.inconclusive(ctx, c, fmt.Sprintf("%s: %s (%d intervals in a row without an answer from Prometheus, limit %d)",
				errored[0].Metric, errored[0].Reason, c.Errors, d.Plan.MaxErrorChecks))
		}
	case len(noData) > 0 || len(held) > 0:
		c.NoData++
		c.Errors = 0
		if c.NoData >= d.Plan.MaxNoDataChecks {
			why := "without enough data"
			first := append(noData, held...)[0]
			if len(noData) == 0 {
				why = "without a decision: too little evidence either way"
			}
			return d.inconclusive(ctx, c, fmt.Sprintf("%s: %s (%d intervals in a row %s, limit %d)",
				first.Metric, first.Reason, c.NoData, why, d.Plan.MaxNoDataChecks))
		}
	default:
		c.NoData, c.Errors = 0, 0
		if d.st.Iteration+1 >= iterationsOf(d.st.CurrentStep()) {
			return d.nextStep(ctx, func(s *canarystate.State) { s.Counters = c })
		}
		return d.save(ctx, func(s *canarystate.State) { s.Counters = c; s.Iteration++; s.IntervalStarted = now })
	}
	// The weight is held: a new interval at the same step.
	return d.save(ctx, func(s *canarystate.State) { s.Counters = c; s.IntervalStarted = now })
}

func (d *Driver) inconclusive(ctx context.Context, c canarystate.Counters, reason string) error {
	if d.Plan.KeepInconclusive {
		err := d.save(ctx, func(s *canarystate.State) {
			s.Counters, s.Phase, s.Kept = c, canarystate.Inconclusive, true
			s.Reason = reason + "; left in place (onInconclusive: keep): msctl canary promote or abort ends it"
		})
		if err == nil {
			d.emit("phase", d.st.Reason)
		}
		return err
	}
	return d.rollBackWith(ctx, canarystate.Inconclusive, reason, func(s *canarystate.State) { s.Counters = c })
}

// rollBack records the decision to roll back; finishRollBack carries it out.
func (d *Driver) rollBack(ctx context.Context, ending canarystate.Phase, reason string) error {
	return d.rollBackWith(ctx, ending, reason, nil)
}

func (d *Driver) rollBackWith(ctx context.Context, ending canarystate.Phase, reason string, also func(*canarystate.State)) error {
	err := d.save(ctx, func(s *canarystate.State) {
		if also != nil {
			also(s)
		}
		s.Phase, s.Ending, s.Reason, s.Gate = canarystate.RollingBack, ending, reason, false
	})
	if err == nil {
		d.emit("phase", "rolling back: "+reason)
	}
	return err
}

// finishRollBack sends every request to the stable, then removes the
// canary workload. The stable never changed, so the same image can be
// tried again later.
func (d *Driver) finishRollBack(ctx context.Context) error {
	if err := d.restoreStable(ctx); err != nil {
		return err
	}
	if d.st.Traffic != (canarystate.Traffic{}) {
		if err := d.save(ctx, func(s *canarystate.State) { s.Traffic = canarystate.Traffic{} }); err != nil {
			return err
		}
	}
	if err := d.stopCanary(ctx, "traffic 0% canary, 100% stable"); err != nil {
		return err
	}
	return d.end(ctx, d.st.Ending, d.st.Reason)
}

// restoreStable puts the stable back on the image it ran before the
// canary, if a promotion got as far as changing it (an abort during
// Promoting, after the stable's upgrade), and checks that it runs it. The
// canary keeps its traffic until then. If the stable cannot be restored,
// the rollback stops there and says so: the state stays RollingBack and a
// rerun tries again.
func (d *Driver) restoreStable(ctx context.Context) error {
	stable, _, err := d.Releases.Stable(ctx)
	if err != nil {
		return err
	}
	want := d.st.StableImage
	if stable.String() == want {
		return nil
	}
	failed := func(err error) error {
		reason := fmt.Sprintf("%s; but the stable runs %s, not %s as before the canary, and restoring it failed (traffic stays on the canary): %v", d.st.Reason, stable, want, err)
		if serr := d.save(ctx, func(s *canarystate.State) { s.Reason = reason }); serr != nil {
			return serr
		}
		return fmt.Errorf("canary of %s: the stable could not be restored to %s: %w", d.Service, want, err)
	}
	img, err := imageref.Parse(want)
	if err != nil {
		return failed(err)
	}
	d.emit("action", fmt.Sprintf("the stable runs %s: restoring %s", stable, want))
	if err := d.Lock.Check(); err != nil {
		return err
	}
	rev, err := d.Releases.Promote(ctx, img)
	if err != nil {
		return failed(err)
	}
	if now, _, err := d.Releases.Stable(ctx); err != nil {
		return failed(err)
	} else if now.String() != want {
		return failed(fmt.Errorf("it runs %s after the restore", now))
	}
	return d.save(ctx, func(s *canarystate.State) { s.StableRevision, s.PromotedRevision = rev, 0 })
}

// stopCanary sends every request to the stable, then removes the canary
// workload: the last acts of a rollback and of a promotion alike.
func (d *Driver) stopCanary(ctx context.Context, msg string) error {
	if err := d.Lock.Check(); err != nil {
		return err
	}
	if err := d.Traffic.Set(ctx, routes.Traffic{}); err != nil {
		return err
	}
	d.emit("traffic", msg)
	if d.Drain > 0 {
		if err := d.Sleep(ctx, d.Drain); err != nil {
			return err
		}
	}
	if err := d.Lock.Check(); err != nil {
		return err
	}
	return d.Releases.RemoveCanary(ctx)
}

// finishPromotion upgrades the stable to the canary's image, then sends
// every request to it and removes the canary. If the stable does not
// become ready, traffic stays on the canary and a rerun tries again.
func (d *Driver) finishPromotion(ctx context.Context) error {
	img, err := imageref.Parse(d.st.CanaryImage)
	if err != nil {
		return err
	}
	if err := d.Lock.Check(); err != nil {
		return err
	}
	rev := d.st.PromotedRevision
	if rev == 0 {
		// The promotion re-renders the canary's route, to what this msctl
		// names: a canary deployed by an earlier one is brought to it first
		// (otherwise a no-op).
		if err := d.Releases.DeployCanary(ctx, img); err != nil {
			return fmt.Errorf("canary of %s: promotion: bringing the canary's release to this msctl: %w", d.Service, err)
		}
		if rev, err = d.Releases.Promote(ctx, img); err != nil {
			const why = "promotion: the stable did not take the canary's image; traffic stays on the canary"
			if serr := d.save(ctx, func(s *canarystate.State) { s.Reason = why + ": " + err.Error() }); serr != nil {
				return serr
			}
			return fmt.Errorf("canary of %s: %s: %w", d.Service, why, err)
		}
		// StableImage stays the one before the canary until the end, so
		// an abort from here on still knows what to restore.
		if err := d.save(ctx, func(s *canarystate.State) {
			s.PromotedRevision, s.Traffic, s.FullSince = rev, canarystate.Traffic{}, time.Time{}
		}); err != nil {
			return err
		}
	}
	if err := d.stopCanary(ctx, "traffic 0% canary, 100% stable (which now runs the canary's image)"); err != nil {
		return err
	}
	reason := fmt.Sprintf("promoted: the stable runs %s (revision %d)", d.st.CanaryImage, rev)
	if r := d.st.Reason; strings.HasPrefix(r, "promoted by ") {
		reason = r + "; " + reason
	}
	return d.endWith(ctx, canarystate.Succeeded, reason, func(s *canarystate.State) {
		s.StableImage, s.StableRevision, s.PromotedRevision = s.CanaryImage, rev, 0
	})
}

// end records a terminal phase and keeps the canary in the history.
func (d *Driver) end(ctx context.Context, phase canarystate.Phase, reason string) error {
	return d.endWith(ctx, phase, reason, nil)
}

func (d *Driver) endWith(ctx context.Context, phase canarystate.Phase, reason string, also func(*canarystate.State)) error {
	now := d.Now()
	err := d.save(ctx, func(s *canarystate.State) {
		if also != nil {
			also(s)
		}
		s.Phase, s.Reason, s.Ending, s.Request = phase, reason, "", nil
		s.History = append(s.History, canarystate.Finished{Phase: phase, Reason: reason, CanaryImage: s.CanaryImage, StartedAt: s.StartedAt, EndedAt: now})
		if over := len(s.History) - canarystate.MaxHistory; over > 0 {
			s.History = s.History[over:]
		}
	})
	if err == nil {
		d.emit("phase", fmt.Sprintf("%s: %s", phase, reason))
	}
	return err
}
