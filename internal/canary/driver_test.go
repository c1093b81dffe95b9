package canary

import (
	"context"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/routes"
	"github.com/prometheus/common/model"
)

// These tests drive the state machine through fakes of its ports, fast.
// The same scenarios run against a real control plane and a real
// Prometheus in internal/canary/canarykube.

// memStore is a Store in memory, with versions like a resourceVersion.
type memStore struct {
	mu  sync.Mutex
	st  []byte
	ver int
}

func (m *memStore) Load(context.Context) (*canarystate.State, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st == nil {
		return nil, "", nil
	}
	st, err := canarystate.Decode(m.st)
	return st, itoa(m.ver), err
}

func (m *memStore) Save(_ context.Context, s *canarystate.State, ver string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := ""
	if m.st != nil {
		cur = itoa(m.ver)
	}
	if ver != cur {
		return "", canarystate.ErrConflict
	}
	b, err := canarystate.Encode(s)
	if err != nil {
		return "", err
	}
	m.st, m.ver = b, m.ver+1
	return itoa(m.ver), nil
}

func itoa(i int) string { return strconv.Itoa(i) }

// world is the traffic a fake Prometheus reports, per workload.
type world struct {
	mu      sync.Mutex
	rps     map[string]float64
	errs    map[string]float64 // error ratio
	down    bool
	queries int
	// With follow set, the service's requests (total per second) split
	// between "user" and "user-canary" by the weight the driver set
	// before the query's time, as a mesh splits them.
	follow float64
	splits []split
	// spacing is how far apart Prometheus's samples are; 0 is unknown.
	spacing time.Duration
}

type split struct {
	at     time.Time
	weight int
}

// weightAt is the canary's weight in the window that ends at at.
func (w *world) weightAt(at time.Time) int {
	weight := 0
	for _, s := range w.splits {
		if s.at.Before(at) {
			weight = s.weight
		}
	}
	return weight
}

var (
	targetRe = regexp.MustCompile(`destination_workload=~"([^"]+)"`)
	windowRe = regexp.MustCompile(`\[([0-9a-z]+)\]`)
)

func (w *world) Query(_ context.Context, q string, at time.Time) (analysis.Sample, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queries++
	if w.down {
		return analysis.Sample{}, errors.New("prometheus at http://127.0.0.1:9: connection refused")
	}
	target := targetRe.FindStringSubmatch(q)[1]
	rps, ratio := w.rps[target], w.errs[target]
	if w.follow > 0 {
		share := float64(w.weightAt(at)) / 100
		if !strings.HasSuffix(target, "-canary") {
			share = 1 - share
		}
		rps = w.follow * share
	}
	window, err := model.ParseDuration(windowRe.FindStringSubmatch(q)[1])
	if err != nil {
		return analysis.Sample{}, err
	}
	total := rps * time.Duration(window).Seconds()
	switch {
	case strings.Contains(q, "count_over_time"):
		// The spacing of the samples, in seconds.
		return analysis.Sample{Value: w.spacing.Seconds(), OK: w.spacing > 0}, nil
	case strings.Contains(q, "histogram_quantile"):
		if total == 0 {
			return analysis.Sample{}, nil
		}
		return analysis.Sample{Value: 20, OK: true}, nil
	case strings.HasPrefix(q, "sum(") && strings.Contains(q, " - (sum("):
		// The failed requests: all of them less the good ones.
		return analysis.Sample{Value: total * ratio, OK: total > 0}, nil
	case strings.Contains(q, `response_code!~"5.*"`):
		if total == 0 {
			return analysis.Sample{}, nil
		}
		return analysis.Sample{Value: (1 - ratio) * 100, OK: true}, nil
	case strings.Contains(q, "istio_requests_total"):
		return analysis.Sample{Value: total, OK: total > 0}, nil
	}
	return analysis.Sample{}, nil
}

func (w *world) set(workload string, rps, errRatio float64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.rps[workload], w.errs[workload] = rps, errRatio
}

// fakeTraffic records every split it is given, and tells the world.
type fakeTraffic struct {
	mu    sync.Mutex
	sets  []routes.Traffic
	world *world
	now   func() time.Time
}

func (f *fakeTraffic) Set(_ context.Context, t routes.Traffic) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sets = append(f.sets, t)
	f.world.mu.Lock()
	f.world.splits = append(f.world.splits, split{f.now(), t.Weight})
	f.world.mu.Unlock()
	return nil
}

func (f *fakeTraffic) weights() []int {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []int
	for _, t := range f.sets {
		out = append(out, t.Weight)
	}
	return out
}

type fakeReleases struct {
	mu       sync.Mutex
	stable   imageref.Ref
	revision int
	canary   *imageref.Ref
	log      []string
	// failPromote and failCanary make those operations fail;
	// failAfterPromote fails a promotion after the stable took its image
	// (its traffic rule not applied, say).
	failPromote, failCanary, failAfterPromote error
	// blips is how many DeployCanary calls fail transiently first.
	blips int
}

func (f *fakeReleases) Stable(context.Context) (imageref.Ref, int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stable, f.revision, nil
}
func (f *fakeReleases) DeployCanary(_ context.Context, img imageref.Ref) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failCanary != nil {
		return f.failCanary
	}
	if f.blips > 0 {
		f.blips--
		return &TransientError{Err: errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")}
	}
	f.canary = &img
	f.log = append(f.log, "deploy canary "+img.Tag)
	return nil
}
func (f *fakeReleases) RemoveCanary(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.canary = nil
	f.log = append(f.log, "remove canary")
	return nil
}
func (f *fakeReleases) Promote(_ context.Context, img imageref.Ref) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failPromote != nil {
		return 0, f.failPromote
	}
	f.stable, f.revision = img, f.revision+1
	f.log = append(f.log, "promote "+img.Tag)
	if f.failAfterPromote != nil {
		return 0, f.failAfterPromote
	}
	return f.revision, nil
}

type fakeLock struct{ holder string }

func (l fakeLock) Check() error   { return nil }
func (l fakeLock) Holder() string { return l.holder }

// clock is a fake clock: sleeping advances it at once, after letting
// other goroutines run.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Sleep(ctx context.Context, d time.Duration) error {
	time.Sleep(time.Millisecond)
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
	return ctx.Err()
}

type rig struct {
	drv      *Driver
	store    *memStore
	world    *world
	traffic  *fakeTraffic
	releases *fakeReleases
	clock    *clock
}

func newRig(steps ...canarystate.Step) *rig {
	r := &rig{
		store:    &memStore{},
		world:    &world{rps: map[string]float64{}, errs: map[string]float64{}},
		clock:    &clock{now: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)},
		releases: &fakeReleases{stable: imageref.Ref{Repository: "r/user", Tag: "v1"}, revision: 1},
	}
	min := 99.0
	r.drv = &Driver{
		Service: "user", Store: r.store, Traffic: r.traffic, Releases: r.releases,
		Analyzer: &analysis.Analyzer{Querier: r.world},
		Target:   analysis.Target{Namespace: "shop", Service: "user", Canary: "user-canary", Stable: "user", Interval: time.Minute},
		Plan: Plan{Steps: steps, Analysis: canarystate.Analysis{Interval: time.Minute, CheckEvery: 5 * time.Second,
			Metrics: []analysis.Metric{{Name: analysis.SuccessRate, Min: &min, MinRequests: 20}}, MaxNoDataChecks: 3, MaxErrorChecks: 3}},
		Lock: fakeLock{"test"}, Tick: time.Second,
	}
	r.traffic = &fakeTraffic{world: r.world, now: r.clock.Now}
	r.drv.Traffic = r.traffic
	r.drv.Now, r.drv.Sleep = r.clock.Now, r.clock.Sleep
	r.world.set("user", 100, 0)
	return r
}

func weights(ws ...int) []canarystate.Step {
	var out []canarystate.Step
	for _, w := range ws {
		out = append(out, canarystate.Step{Kind: config.StepWeight, Weight: w})
	}
	return out
}

var v2 = imageref.Ref{Repository: "r/user", Tag: "v2"}

func run(t *testing.T, r *rig, o RunOptions) (*canarystate.State, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return r.drv.Run(ctx, o)
}

func TestHealthyCanaryIsPromoted(t *testing.T) {
	r := newRig(weights(25, 50, 100)...)
	r.world.set("user-canary", 100, 0)
	st, err := run(t, r, RunOptions{Image: v2})
	if err != nil {
		t.Fatal(err)
	}
	if st.Phase != canarystate.Succeeded || st.StableImage != "r/user:v2" || st.StableRevision != 2 || st.Driver != "" {
		t.Errorf("state %+v", st)
	}
	if got := r.traffic.weights(); !equal(got, []int{25, 50, 100, 0}) {
		t.Errorf("weights %v", got)
	}
	// The promotion first brings the canary's release to this msctl.
	if got := strings.Join(r.releases.log, ", "); got != "deploy canary v2, deploy canary v2, promote v2, remove canary" {
		t.Errorf("releases: %s", got)
	}
	if len(st.History) != 1 || st.History[0].Phase != canarystate.Succeeded {
		t.Errorf("history %+v", st.History)
	}
}

func TestFailingCanaryIsRolledBackWeightFirst(t *testing.T) {
	r := newRig(weights(25, 50, 100)...)
	r.world.set("user-canary", 100, 0.2)
	st, err := run(t, r, RunOptions{Image: v2})
	var oe *OutcomeError
	if !errors.As(err, &oe) || errkind.Of(err) != errkind.RolledBack || st.Phase != canarystate.RolledBack {
		t.Fatalf("outcome %v, state %+v", err, st)
	}
	if !strings.Contains(st.Reason, "request-success-rate") {
		t.Errorf("reason %q", st.Reason)
	}
	if got := r.traffic.weights(); !equal(got, []int{25, 0}) {
		t.Errorf("weights %v: want the first step, then 0", got)
	}
	if r.releases.stable.Tag != "v1" || r.releases.canary != nil || r.releases.revision != 1 {
		t.Errorf("releases %+v", r.releases)
	}
	// The same image can be tried again at once.
	r.world.set("user-canary", 100, 0)
	if st, err := run(t, r, RunOptions{Image: v2}); err != nil || st.Phase != canarystate.Succeeded || len(st.History) != 2 {
		t.Fatalf("retry: %v %+v", err, st)
	}
}

func TestNoTrafficIsInconclusiveNeverPromoted(t *testing.T) {
	r := newRig(weights(50, 100)...)
	st, err := run(t, r, RunOptions{Image: v2})
	if errkind.Of(err) != errkind.Inconclusive || st.Phase != canarystate.Inconclusive || st.Counters.NoData != 3 {
		t.Fatalf("outcome %v, state %+v", err, st)
	}
	if r.releases.stable.Tag != "v1" || r.releases.canary != nil {
		t.Errorf("releases %+v", r.releases)
	}
}

func TestPrometheusDownHoldsThenInconclusive(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.world.down = true
	st, err := run(t, r, RunOptions{Image: v2})
	if errkind.Of(err) != errkind.Inconclusive || !strings.Contains(st.Reason, "http://127.0.0.1:9") {
		t.Fatalf("outcome %v, reason %q", err, st.Reason)
	}
	if got := r.traffic.weights(); !equal(got, []int{50, 0}) {
		t.Errorf("weights %v: held at the first step", got)
	}
}

func TestGatePausesThenPromoteCarriesOn(t *testing.T) {
	steps := append(weights(25), canarystate.Step{Kind: config.StepPause})
	steps = append(steps, weights(100)...)
	r := newRig(steps...)
	r.world.set("user-canary", 100, 0)
	st, err := run(t, r, RunOptions{Image: v2})
	if errkind.Of(err) != errkind.Paused || st.Phase != canarystate.Paused || !st.Gate || st.Driver != "" {
		t.Fatalf("outcome %v, state %+v", err, st)
	}
	// Another process approves; with no driver running, promote acts itself.
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionPromote, false, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	if st, err = run(t, r, RunOptions{Once: true}); err != nil || st.Phase != canarystate.Progressing || st.Step != 2 {
		t.Fatalf("after promote: %v %+v", err, st)
	}
	if st, err = run(t, r, RunOptions{}); err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("run after the gate: %v %+v", err, st)
	}
}

func TestAbortFromAnotherProcess(t *testing.T) {
	r := newRig(weights(10, 100)...)
	r.world.set("user-canary", 100, 0)
	r.drv.Plan.Interval = 1000 * time.Hour // it would wait a long time
	done := make(chan error, 1)
	go func() { _, err := run(t, r, RunOptions{Image: v2}); done <- err }()
	time.Sleep(100 * time.Millisecond)
	asked := time.Now()
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionAbort, false, "bob", time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if took := time.Since(asked); took > time.Second {
			t.Errorf("the driver took %s to act on abort", took)
		}
		if errkind.Of(err) != errkind.RolledBack || !strings.Contains(err.Error(), "aborted by bob") {
			t.Errorf("outcome %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("abort not acted on")
	}
	if got := r.traffic.weights(); got[len(got)-1] != 0 {
		t.Errorf("weights %v", got)
	}
}

func TestBadRequests(t *testing.T) {
	r := newRig(weights(100)...)
	if _, err := run(t, r, RunOptions{}); errkind.Of(err) != errkind.BadInput || !strings.Contains(err.Error(), "no canary of user is in progress") {
		t.Errorf("resume of nothing: %v", err)
	}
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionPromote, false, "x", time.Now()); errkind.Of(err) != errkind.BadInput {
		t.Errorf("promote of nothing: %v", err)
	}
	if _, err := run(t, r, RunOptions{Image: r.releases.stable}); errkind.Of(err) != errkind.BadInput {
		t.Errorf("canary of the stable image: %v", err)
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// An abort of a canary whose promotion keeps failing rolls it back; it does
// not finish the promotion and report success.
func TestAbortWhilePromotionFails(t *testing.T) {
	r := newRig(weights(100)...)
	r.world.set("user-canary", 100, 0)
	r.releases.failPromote = errors.New("release user: pending-upgrade")
	st, err := run(t, r, RunOptions{Image: v2})
	if err == nil || st.Phase != canarystate.Promoting || !strings.Contains(st.Reason, "traffic stays on the canary") {
		t.Fatalf("failed promotion: %v %s %q", err, st.Phase, st.Reason)
	}
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionAbort, false, "carol", time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err = run(t, r, RunOptions{Once: true})
	if errkind.Of(err) != errkind.RolledBack || st.Phase != canarystate.Aborted || r.releases.stable.Tag != "v1" || r.releases.canary != nil {
		t.Fatalf("abort during promotion: %v %s, stable %s", err, st.Phase, r.releases.stable.Tag)
	}
}

// A canary whose workload never becomes ready is rolled back, not left to
// block the service.
func TestCanaryThatNeverRunsIsRolledBack(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.releases.failCanary = errors.New("Deployment user-canary not ready: pod user-canary-x: CrashLoopBackOff")
	st, err := run(t, r, RunOptions{Image: v2})
	if errkind.Of(err) != errkind.RolledBack || !strings.Contains(st.Reason, "did not become ready: Deployment user-canary not ready") {
		t.Fatalf("outcome %v, reason %q", err, st.Reason)
	}
}

// An interval shorter than two scrapes would read no data at every check:
// a new canary is refused before anything runs.
func TestAnIntervalShorterThanTwoScrapesIsRefused(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.world.set("user-canary", 100, 0)
	r.world.spacing = 45 * time.Second // the interval is 1m
	st, err := run(t, r, RunOptions{Image: v2})
	if errkind.Of(err) != errkind.BadInput || !strings.Contains(err.Error(), "analysis.interval 1m0s is less than twice the spacing of the request metrics' samples (45s") || st != nil {
		t.Fatalf("got %v, %+v; want an input error naming analysis.interval", err, st)
	}
	if r.releases.canary != nil || len(r.traffic.sets) != 0 {
		t.Errorf("a refused canary ran: canary %v, traffic %v", r.releases.canary, r.traffic.sets)
	}
	r.world.spacing = 30 * time.Second
	if st, err := run(t, r, RunOptions{Image: v2}); err != nil {
		t.Fatalf("30s samples and a 1m interval: %v %+v", err, st)
	}
}

// An API blip while deploying the canary is retried; one that outlasts
// the retries ends the run with the canary at its step, not rolled back,
// and a rerun goes on.
func TestTransientDeployFailuresAreRetried(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.world.set("user-canary", 100, 0)
	var retries int
	r.drv.Events = func(e Event) {
		if e.Type == "retry" {
			retries++
		}
	}
	r.releases.blips = 2
	st, err := run(t, r, RunOptions{Image: v2})
	if err != nil || st.Phase != canarystate.Succeeded || retries != 2 {
		t.Fatalf("after 2 blips: %v %s %q, %d retries", err, st.Phase, st.Reason, retries)
	}

	r = newRig(weights(50, 100)...)
	r.world.set("user-canary", 100, 0)
	r.releases.blips = deployRetries + 1
	_, err = run(t, r, RunOptions{Image: v2})
	if err == nil || errkind.Of(err) == errkind.RolledBack || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("blips past the retries: %v", err)
	}
	if st, _, _ := r.store.Load(context.Background()); st == nil || st.Phase.Terminal() || st.Phase == canarystate.RollingBack {
		t.Fatalf("the canary was ended for an API blip: %+v", st)
	}
	st, err = run(t, r, RunOptions{})
	if err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("rerun: %v %s %q", err, st.Phase, st.Reason)
	}
}

// Steps changed in the project file mid-canary do not move its traffic:
// the state's own steps rule.
func TestChangedStepsDoNotMoveTraffic(t *testing.T) {
	steps := append(weights(10, 25), canarystate.Step{Kind: config.StepPause})
	steps = append(steps, weights(50, 100)...)
	r := newRig(steps...)
	r.world.set("user-canary", 100, 0)
	if _, err := run(t, r, RunOptions{Image: v2}); errkind.Of(err) != errkind.Paused {
		t.Fatal(err)
	}
	r.drv.Plan.Steps = weights(5, 100)
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionPromote, false, "alice", time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err := run(t, r, RunOptions{})
	if err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("%v %s", err, st.Phase)
	}
	// A resumed driver sets its step's split again; what matters is the
	// sequence of different splits.
	if got := slices.Compact(r.traffic.weights()); !equal(got, []int{10, 25, 50, 100, 0}) {
		t.Errorf("weights %v", got)
	}
}

// onNoData: fail fails an interval, not the first check.
func TestNoDataFailCountsAtTheIntervalEnd(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.drv.Plan.Metrics[0].OnNoData = analysis.OnNoDataFail
	r.drv.Plan.MaxFailedChecks = 2
	st, err := run(t, r, RunOptions{Image: v2})
	if errkind.Of(err) != errkind.RolledBack || st.Counters.Failed != 2 {
		t.Fatalf("outcome %v, counters %+v", err, st.Counters)
	}
}

// An inconclusive canary kept running still takes abort.
func TestKeptInconclusiveCanBeAborted(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.drv.Plan.KeepInconclusive = true
	st, err := run(t, r, RunOptions{Image: v2})
	if errkind.Of(err) != errkind.Inconclusive || !st.Kept || r.releases.canary == nil {
		t.Fatalf("outcome %v, state %s kept %v", err, st.Phase, st.Kept)
	}
	if _, err := Ask(context.Background(), r.store, "user", canarystate.ActionAbort, false, "dave", time.Now()); err != nil {
		t.Fatal(err)
	}
	st, err = run(t, r, RunOptions{Once: true})
	if st.Phase != canarystate.Aborted || r.releases.canary != nil || st.Kept {
		t.Fatalf("abort of a kept canary: %v %s", err, st.Phase)
	}
}

// A CI job retried after its canary succeeded succeeds again, changing
// nothing.
func TestRetryAfterSuccess(t *testing.T) {
	r := newRig(weights(100)...)
	r.world.set("user-canary", 100, 0)
	if _, err := run(t, r, RunOptions{Image: v2}); err != nil {
		t.Fatal(err)
	}
	sets := len(r.traffic.weights())
	st, err := run(t, r, RunOptions{Image: v2})
	if err != nil || st.Phase != canarystate.Succeeded || len(r.traffic.weights()) != sets {
		t.Fatalf("retry: %v %s", err, st.Phase)
	}
}

// A pending abort is not replaced by a later request.
func TestAbortIsNotOverwritten(t *testing.T) {
	r := newRig(weights(10, 100)...)
	r.drv.Plan.Interval = 1000 * time.Hour
	if _, err := run(t, r, RunOptions{Image: v2, Once: true}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Ask(ctx, r.store, "user", canarystate.ActionAbort, false, "bob", time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := Ask(ctx, r.store, "user", canarystate.ActionPromote, true, "eve", time.Now()); errkind.Of(err) != errkind.BadInput {
		t.Errorf("promote over a pending abort: %v", err)
	}
}

// Intervals without a decision count in a row: one that passes clears them.
func TestHeldIntervalsCountInARow(t *testing.T) {
	r := newRig(weights(50, 100)...)
	r.world.set("user-canary", 100, 0)
	c := canarystate.Counters{NoData: 2, Errors: 1}
	st := &canarystate.State{Service: "user", Phase: canarystate.Progressing, Steps: weights(50, 100), Counters: c}
	if _, err := r.store.Save(context.Background(), st, ""); err != nil {
		t.Fatal(err)
	}
	r.drv.defaults()
	if err := r.drv.reload(context.Background()); err != nil {
		t.Fatal(err)
	}
	pass := analysis.Check{Metric: "request-success-rate", Decision: analysis.Pass}
	if err := r.drv.endInterval(context.Background(), []analysis.Check{pass}, true); err != nil {
		t.Fatal(err)
	}
	if got := r.drv.st.Counters; got.NoData != 0 || got.Errors != 0 || r.drv.st.Step != 1 {
		t.Errorf("after a passing interval: %+v at step %d", got, r.drv.st.Step)
	}
}
