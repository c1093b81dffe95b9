package canary

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
)

// Issue 20's defects of the driver, each with the scenario that showed it.

func gate() canarystate.Step { return canarystate.Step{Kind: config.StepPause} }

// A custom metric that is empty while the canary is healthy, with
// onNoData: pass, passes: it used to count as no data and end the canary
// Inconclusive.
func TestOnNoDataPassPasses(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.world.set("user-canary", 100, 0)
	zero := 0.0
	r.drv.Plan.Metrics = append(r.drv.Plan.Metrics, analysis.Metric{
		Name: "errors-when-any", Max: &zero, OnNoData: analysis.OnNoDataPass,
		Query: `sum(rate(app_errors_total{destination_workload=~"{{ target }}"}[{{ interval }}]))`,
	})
	st, err := run(t, r, RunOptions{Image: v2})
	if err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("outcome %v, state %s: %s", err, st.Phase, st.Reason)
	}
}

// A relative check passes the 100% step of a healthy canary: the stable has
// no requests there, so it is compared with the stable's last interval
// that had them. The test traffic follows the weights, as a mesh's does.
func TestRelativeCheckPassesTheFullStep(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.world.follow = 100
	r.drv.Plan.Metrics = []analysis.Metric{{Name: analysis.SuccessRate, Relative: &analysis.Relative{MaxDrop: 5}, MinRequests: 20}}
	st, err := run(t, r, RunOptions{Image: v2})
	if err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("outcome %v, state %s: %s", err, st.Phase, st.Reason)
	}
	var full *analysis.Check
	for i := range st.Checks {
		if !st.Checks[i].StableAt.IsZero() {
			full = &st.Checks[i]
		}
	}
	if full == nil || full.Decision != analysis.Pass || !strings.Contains(full.Reason, "last interval with traffic") {
		t.Errorf("no check at the full step compared with the stable's last interval: %+v", full)
	}
}

// An abort after the promotion upgraded the stable (and then failed, or the
// driver died before recording it) puts the stable back on its image.
func TestAbortAfterTheStableTookTheCanarysImage(t *testing.T) {
	r := newRig(weights(100)...)
	r.world.set("user-canary", 100, 0)
	r.releases.failAfterPromote = errors.New("VirtualService user: the server could not apply it")
	st, err := run(t, r, RunOptions{Image: v2})
	if err == nil || st.Phase != canarystate.Promoting || r.releases.stable.Tag != "v2" {
		t.Fatalf("failed promotion: %v %s, stable %s", err, st.Phase, r.releases.stable.Tag)
	}
	r.releases.failAfterPromote = nil
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionAbort, false, "carol", time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err = run(t, r, RunOptions{Once: true})
	if errkind.Of(err) != errkind.RolledBack || st.Phase != canarystate.Aborted {
		t.Fatalf("abort: %v %s: %s", err, st.Phase, st.Reason)
	}
	if r.releases.stable.Tag != "v1" || r.releases.canary != nil || st.StableImage != "r/user:v1" {
		t.Errorf("after the abort the stable runs %s (state says %s), canary %v; log %v", r.releases.stable.Tag, st.StableImage, r.releases.canary, r.releases.log)
	}
}

// When the stable cannot be restored, the abort says so and does not
// report an aborted canary.
func TestAbortThatCannotRestoreTheStableSaysSo(t *testing.T) {
	r := newRig(weights(100)...)
	r.world.set("user-canary", 100, 0)
	r.releases.failAfterPromote = errors.New("VirtualService user: the server could not apply it")
	if _, err := run(t, r, RunOptions{Image: v2}); err == nil {
		t.Fatal("the promotion should have failed")
	}
	r.releases.failAfterPromote = nil
	r.releases.failPromote = errors.New("release user: timed out waiting for the condition")
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionAbort, false, "carol", time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := run(t, r, RunOptions{Once: true})
	if err == nil || st.Phase != canarystate.RollingBack || !strings.Contains(err.Error(), "could not be restored to r/user:v1") ||
		!strings.Contains(st.Reason, "restoring it failed") {
		t.Fatalf("abort without a restore: %v, %s: %s", err, st.Phase, st.Reason)
	}
	if got := r.traffic.weights(); got[len(got)-1] != 100 {
		t.Errorf("traffic %v: it stays on the canary while the stable runs another image", got)
	}
	// Once the stable can be restored again, a rerun finishes the abort.
	r.releases.failPromote = nil
	if st, err = run(t, r, RunOptions{Once: true}); st.Phase != canarystate.Aborted || r.releases.stable.Tag != "v1" {
		t.Fatalf("rerun: %v %s, stable %s", err, st.Phase, r.releases.stable.Tag)
	}
}

// A canary held at a gate, waiting for a person, is still analysed: one
// that goes bad there is rolled back.
func TestCanaryAtAGateIsWatched(t *testing.T) {
	r := newRig(append(weights(25), gate(), weights(100)[0])...)
	r.world.set("user-canary", 100, 0)
	r.drv.Events = func(e Event) {
		if strings.Contains(e.Message, "awaiting approval") {
			r.world.set("user-canary", 100, 0.3)
		}
	}
	st, err := run(t, r, RunOptions{Image: v2, WaitForApproval: true})
	if errkind.Of(err) != errkind.RolledBack || st.Phase != canarystate.RolledBack || st.Step != 1 {
		t.Fatalf("outcome %v, state %s at step %d: %s", err, st.Phase, st.Step, st.Reason)
	}
}

// A gate before any traffic moved does not end the canary for lack of data.
func TestGateBeforeTrafficWaits(t *testing.T) {
	r := newRig(gate(), weights(100)[0])
	r.drv.Plan.Interval = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	st, err := r.drv.Run(ctx, RunOptions{Image: v2, WaitForApproval: true})
	if !errors.Is(err, context.DeadlineExceeded) || st.Phase != canarystate.Paused {
		t.Fatalf("outcome %v, state %s: %s", err, st.Phase, st.Reason)
	}
}

// Time spent waiting at a gate does not count against --timeout: the
// flow of docs/ci.md (a gate, a person approves an hour later, the job
// reruns) must not roll back the canary just approved.
func TestTimeoutDoesNotCountTheWaitAtAGate(t *testing.T) {
	r := newRig(append(weights(25), gate(), weights(100)[0])...)
	r.world.set("user-canary", 100, 0)
	o := RunOptions{Image: v2, Timeout: 5 * time.Minute}
	if _, err := run(t, r, o); errkind.Of(err) != errkind.Paused {
		t.Fatal(err)
	}
	r.clock.Sleep(context.Background(), time.Hour)
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionPromote, false, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := run(t, r, o)
	if err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("after approval: %v, %s: %s", err, st.Phase, st.Reason)
	}
	if st.Waited < time.Hour {
		t.Errorf("waited %s, want the hour at the gate", st.Waited)
	}
}

// A state deleted under a running driver is an error, not a panic.
func TestStateDeletedMidRun(t *testing.T) {
	r := newRig(weights(25, 100)...)
	r.world.set("user-canary", 100, 0)
	r.drv.Events = func(e Event) {
		if e.Type == "check" {
			r.store.mu.Lock()
			r.store.st = nil
			r.store.mu.Unlock()
		}
	}
	_, err := run(t, r, RunOptions{Image: v2})
	if err == nil || !strings.Contains(err.Error(), "was deleted while the canary ran") {
		t.Fatalf("outcome %v", err)
	}
}

// A promotion whose stable times out is a timeout (exit 6), not a failure.
func TestPromotionTimeoutKeepsItsKind(t *testing.T) {
	r := newRig(weights(100)...)
	r.world.set("user-canary", 100, 0)
	r.releases.failPromote = errkind.Mark(errkind.Timeout, errors.New("user: not ready within 5m0s"))
	if _, err := run(t, r, RunOptions{Image: v2}); errkind.Of(err) != errkind.Timeout {
		t.Fatalf("outcome %v (kind %v)", err, errkind.Of(err))
	}
}

// A run that ends on --keep-on-timeout or an error names no driver.
func TestEndedRunLeavesNoDriver(t *testing.T) {
	r := newRig(weights(25, 100)...)
	r.world.set("user-canary", 100, 0)
	r.drv.Plan.Interval = 1000 * time.Hour
	if _, err := run(t, r, RunOptions{Image: v2, Timeout: time.Minute, KeepOnTimeout: true}); errkind.Of(err) != errkind.Timeout {
		t.Fatalf("outcome %v", err)
	}
	if st, _, _ := r.store.Load(context.Background()); st.Driver != "" {
		t.Errorf("after --keep-on-timeout the state names driver %q", st.Driver)
	}
	r.releases.failPromote = errors.New("release user: pending-upgrade")
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionPromote, true, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, r, RunOptions{}); err == nil {
		t.Fatal("the promotion should have failed")
	}
	if st, _, _ := r.store.Load(context.Background()); st.Driver != "" {
		t.Errorf("after an error the state names driver %q", st.Driver)
	}
}

// TestAManualPauseDoesNotUseUpATimedPause: time a person held the canary
// paused is not time the timed pause step waited.
func TestAManualPauseDoesNotUseUpATimedPause(t *testing.T) {
	steps := append(weights(25), canarystate.Step{Kind: config.StepPause, Pause: 1000 * time.Hour})
	steps = append(steps, weights(100)...)
	r := newRig(steps...)
	r.world.set("user-canary", 100, 0)
	done := make(chan error, 1)
	go func() { _, err := run(t, r, RunOptions{Image: v2}); done <- err }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if st, _, _ := r.store.Load(context.Background()); st != nil && st.Step == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the canary never reached the timed pause")
		}
	}
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionPause, false, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := <-done; errkind.Of(err) != errkind.Paused {
		t.Fatalf("after pause: %v", err)
	}
	r.clock.Sleep(context.Background(), 2000*time.Hour) // paused longer than the step's pause
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionResume, false, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, r, RunOptions{Once: true}); err != nil { // takes the resume
		t.Fatal(err)
	}
	wait, err := r.drv.progress(context.Background())
	if st := r.drv.st; err != nil || st.Step != 1 || st.Phase != canarystate.Progressing || wait <= 0 {
		t.Fatalf("after resume: %v, step %d %s, wait %s; want still in the timed pause (step 1)", err, st.Step, st.Phase, wait)
	}
}

// TestATimedPauseCountsOnlyWatchedTime: a driver killed during a timed
// pause (its CI runner gone) and rerun long after waits the rest of the
// pause, watching the canary, rather than moving on at once; nor is it
// timed out for the time nobody drove it.
func TestATimedPauseCountsOnlyWatchedTime(t *testing.T) {
	steps := append(weights(25), canarystate.Step{Kind: config.StepPause, Pause: 1000 * time.Hour})
	steps = append(steps, weights(100)...)
	r := newRig(steps...)
	r.world.set("user-canary", 100, 0)
	ctx, kill := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := r.drv.Run(ctx, RunOptions{Image: v2}); done <- err }()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		if st, _, _ := r.store.Load(context.Background()); st != nil && st.Step == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the canary never reached the timed pause")
		}
	}
	kill()
	<-done
	r.clock.Sleep(context.Background(), 2000*time.Hour) // no driver, longer than the pause
	// Nor does the time without a driver count against --timeout.
	if _, err := run(t, r, RunOptions{Once: true, Timeout: time.Hour}); err != nil {
		t.Fatal(err)
	}
	wait, err := r.drv.progress(context.Background())
	if st := r.drv.st; err != nil || st.Step != 1 || st.Phase != canarystate.Progressing || wait <= 0 || st.Unwatched < 1999*time.Hour {
		t.Fatalf("after the rerun: %v, step %d %s, wait %s, unwatched %s; want still in the timed pause (step 1)", err, st.Step, st.Phase, wait, st.Unwatched)
	}
}

// A canary in progress goes on with the analysis it started with: a project
// file changed mid-canary (here to a bound the healthy canary fails) does
// not change its verdict.
func TestACanaryKeepsThePlanItStartedWith(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.world.set("user-canary", 100, 0)
	if _, err := run(t, r, RunOptions{Image: v2, Once: true}); err != nil {
		t.Fatal(err)
	}
	st, _, _ := r.store.Load(context.Background())
	if st.Analysis == nil || st.Analysis.Interval != time.Minute || len(st.Analysis.Metrics) != 1 {
		t.Fatalf("the state pins no plan: %+v", st.Analysis)
	}
	strict := 99.99
	r.drv.Plan.Metrics = []analysis.Metric{{Name: analysis.SuccessRate, Min: &strict, MinRequests: 20}}
	r.world.set("user-canary", 100, 0.001) // 99.9%: passes the pinned 99, fails 99.99
	st, err := run(t, r, RunOptions{})
	if err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("outcome %v, state %s: %s", err, st.Phase, st.Reason)
	}
}

// With the project file's canary block broken, a canary in progress still
// takes an abort, while a new canary is refused with the file's problem.
func TestABrokenPlanStopsOnlyANewCanary(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.world.set("user-canary", 100, 0)
	if _, err := run(t, r, RunOptions{Image: v2, Once: true}); err != nil {
		t.Fatal(err)
	}
	broken := errkind.BadInputf("msctl.yaml:12: canary.steps[0].weight: 150 is not from 1 to 100")
	r.drv.Plan, r.drv.NoPlan = Plan{}, broken
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionAbort, false, "carol", time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := run(t, r, RunOptions{Once: true})
	if errkind.Of(err) != errkind.RolledBack || st.Phase != canarystate.Aborted || r.releases.canary != nil {
		t.Fatalf("abort: %v %s: %s", err, st.Phase, st.Reason)
	}
	if _, err := run(t, r, RunOptions{Image: v2}); !errors.Is(err, broken) {
		t.Fatalf("a new canary with a broken plan: %v", err)
	}
}

// A promote that a live driver takes while it rolls the canary back is
// not carried out, and says so with the rollback's exit code, as the same
// promote does with no driver running.
func TestAPromoteDroppedByARollingBackDriverIsNotAnswered0(t *testing.T) {
	store := &memStore{}
	ctx := context.Background()
	if _, err := store.Save(ctx, &canarystate.State{Service: "user", Phase: canarystate.RollingBack, Ending: canarystate.RolledBack,
		Reason: "request-success-rate: 9 of 100 requests failed"}, ""); err != nil {
		t.Fatal(err)
	}
	go func() { // the driver: takes the request and goes on rolling back
		for range 200 {
			time.Sleep(5 * time.Millisecond)
			st, ver, _ := store.Load(ctx)
			if st.Request != nil {
				st.Request = nil
				_, _ = store.Save(ctx, st, ver)
				return
			}
		}
	}()
	a := actor{store: store, by: "bob", now: time.Now(), tick: 5 * time.Millisecond,
		lock: func() (string, error) { return "ci-job", nil }}
	_, err := a.act(ctx, "user", canarystate.ActionPromote, false)
	if errkind.Of(err) != errkind.RolledBack || !strings.Contains(err.Error(), "promote not carried out") {
		t.Fatalf("promote during a rollback: %v (kind %v)", err, errkind.Of(err))
	}
}
