package canary

import (
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/routes"
)

// fakeProcesses is the local supervisor as the local ports see it: a
// stable and perhaps a canary process, and the gateway's split.
type fakeProcesses struct {
	mu      sync.Mutex
	stable  Process
	canary  *Process
	traffic []routes.Traffic
	log     []string
}

func (f *fakeProcesses) SetTraffic(_ context.Context, _ string, t routes.Traffic) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traffic = append(f.traffic, t)
	return nil
}

func (f *fakeProcesses) Stable(context.Context, string) (Process, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stable, nil
}

func (f *fakeProcesses) StartCanary(_ context.Context, _ string, p Process) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.canary = &p
	f.log = append(f.log, "start "+p.Revision)
	return nil
}

func (f *fakeProcesses) StopCanary(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.canary != nil {
		f.log = append(f.log, "stop")
	}
	f.canary = nil
	return nil
}

func (f *fakeProcesses) Promote(context.Context, string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.canary != nil {
		f.stable, f.canary = *f.canary, nil
		f.log = append(f.log, "promote")
	}
	return nil
}

func (f *fakeProcesses) lastWeight() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.traffic[len(f.traffic)-1].Weight
}

type localRig struct {
	local *Local
	procs *fakeProcesses
	world *world
	bin   string
}

func newLocalRig(t *testing.T) *localRig {
	dir := t.TempDir()
	bin := filepath.Join(dir, "payment")
	if err := os.WriteFile(bin, []byte("stable binary"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := &localRig{procs: &fakeProcesses{stable: Process{Binary: bin}}, bin: bin,
		world: &world{rps: map[string]float64{}, errs: map[string]float64{}}}
	r.world.set("payment", 100, 0)
	minSuccess := 99.0
	plan := Plan{Steps: weights(50, 100), Analysis: canarystate.Analysis{Interval: time.Second, CheckEvery: 100 * time.Millisecond,
		Metrics: []analysis.Metric{{Name: analysis.SuccessRate, Min: &minSuccess, MinRequests: 20}}}}
	r.local = &Local{RunDir: filepath.Join(dir, "run"), Processes: r.procs, Prometheus: r.world, Namespace: "shop",
		Tick: 50 * time.Millisecond, PlanFor: func(string) (Plan, error) { return plan, nil }}
	return r
}

func (r *localRig) run(t *testing.T, p Process) (*canarystate.State, error) {
	t.Helper()
	img, err := r.local.Image("payment", p)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return r.local.Run(ctx, "payment", RunOptions{Image: img}, kube.CurrentHolder("test", os.Getenv))
}

func TestLocalImageIsBinaryAndEnv(t *testing.T) {
	r := newLocalRig(t)
	plain, err := LocalImage("payment", Process{Binary: r.bin})
	if err != nil {
		t.Fatal(err)
	}
	faulty, _ := LocalImage("payment", Process{Binary: r.bin, Env: map[string]string{"FAULT_ERROR_RATE": "0.2", "A": "1"}})
	same, _ := LocalImage("payment", Process{Binary: r.bin, Env: map[string]string{"A": "1", "FAULT_ERROR_RATE": "0.2"}, Revision: "label only"})
	if plain.String() == faulty.String() || faulty.String() != same.String() {
		t.Fatalf("images: plain %s, faulty %s, same env %s", plain, faulty, same)
	}
	if !strings.HasPrefix(plain.String(), "local/payment@sha256:") {
		t.Fatalf("image %s", plain)
	}
	if err := plain.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLocalBadCanaryIsRolledBack(t *testing.T) {
	r := newLocalRig(t)
	r.world.set("payment-canary", 100, 0.2)
	st, err := r.run(t, Process{Binary: r.bin, Env: map[string]string{"FAULT_ERROR_RATE": "0.2"}, Revision: "faulty"})
	if errkind.Of(err) != errkind.RolledBack || st.Phase != canarystate.RolledBack {
		t.Fatalf("outcome %v, phase %v; want rolled back", err, st)
	}
	if r.procs.canary != nil || r.procs.lastWeight() != 0 || r.procs.stable.Env != nil {
		t.Fatalf("after rollback: canary %+v, weight %d, stable %+v", r.procs.canary, r.procs.lastWeight(), r.procs.stable)
	}
	if got := strings.Join(r.procs.log, ", "); got != "start faulty, stop" {
		t.Fatalf("processes: %s", got)
	}
	// The state is in the run directory's file, readable by another process.
	saved, _, err := r.local.Store("payment").Load(context.Background())
	if err != nil || saved.Phase != canarystate.RolledBack || saved.Driver != "" {
		t.Fatalf("saved state %+v, %v", saved, err)
	}
}

func TestLocalHealthyCanaryIsPromoted(t *testing.T) {
	r := newLocalRig(t)
	r.world.set("payment-canary", 100, 0)
	canary := Process{Binary: r.bin, Env: map[string]string{"FEATURE": "on"}, Revision: "v2"}
	st, err := r.run(t, canary)
	if err != nil || st.Phase != canarystate.Succeeded || st.StableRevision != 2 {
		t.Fatalf("outcome %v, state %+v", err, st)
	}
	// The stable runs the kept copy of the canary's binary, with its env.
	if !maps.Equal(r.procs.stable.Env, canary.Env) || r.procs.stable.Binary == r.bin || r.procs.canary != nil {
		t.Fatalf("stable %+v canary %+v", r.procs.stable, r.procs.canary)
	}
	want, _ := LocalImage("payment", canary)
	if st.StableImage != want.String() {
		t.Fatalf("stable image %s, want %s", st.StableImage, want)
	}
	// A retried run of the same image has nothing to do.
	if st, err := r.run(t, canary); err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("rerun: %v %+v", err, st)
	}
}

func TestLocalSecondDriverFailsFastNamingTheHolder(t *testing.T) {
	r := newLocalRig(t)
	held, err := r.local.Lock("payment", kube.CurrentHolder("ci job 7", os.Getenv))
	if err != nil {
		t.Fatal(err)
	}
	defer held.Release()
	_, err = r.run(t, Process{Binary: r.bin, Env: map[string]string{"X": "1"}})
	var le *LocalLockHeldError
	if !errors.As(err, &le) || errkind.Of(err) != errkind.LockHeld || !strings.Contains(err.Error(), "ci job 7") {
		t.Fatalf("second driver: %v", err)
	}
	held.Release()
	if err := held.Check(); err == nil {
		t.Fatal("a released lock still checks as held")
	}
	if _, err := r.local.Lock("payment", kube.CurrentHolder("next", os.Getenv)); err != nil {
		t.Fatalf("lock after release: %v", err)
	}
}

// With no driver running, abort takes the lock and rolls the canary back
// itself; with one running, the driver takes the request.
func TestLocalAbort(t *testing.T) {
	r := newLocalRig(t)
	img, err := r.local.Image("payment", Process{Binary: r.bin, Env: map[string]string{"X": "1"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	me := kube.CurrentHolder("me", os.Getenv)
	if _, err := r.local.Run(ctx, "payment", RunOptions{Image: img, Once: true}, me); err != nil {
		t.Fatal(err)
	}
	if r.procs.canary == nil || r.procs.lastWeight() != 50 {
		t.Fatalf("after start: canary %+v weight %d", r.procs.canary, r.procs.lastWeight())
	}
	st, err := r.local.Act(ctx, "payment", canarystate.ActionAbort, false, me)
	if err != nil || st.Phase != canarystate.Aborted || r.procs.canary != nil {
		t.Fatalf("abort: %v %+v canary %+v", err, st, r.procs.canary)
	}
}

// A promotion whose canary process is gone (msctl up restarted meanwhile)
// starts it again, then promotes it.
func TestLocalPromoteRestartsAGoneCanary(t *testing.T) {
	r := newLocalRig(t)
	p := Process{Binary: r.bin, Env: map[string]string{"V": "2"}, Revision: "v2"}
	img, err := r.local.Image("payment", p)
	if err != nil {
		t.Fatal(err)
	}
	rel := &localReleases{p: r.procs, service: "payment", images: localImages{filepath.Join(r.local.dir(), "images")},
		revision: filepath.Join(r.local.dir(), "payment.revision")}
	rev, err := rel.Promote(context.Background(), img)
	if err != nil || rev != 2 || r.procs.stable.Env["V"] != "2" {
		t.Fatalf("promote with no canary running: rev %d, %v, stable %+v", rev, err, r.procs.stable)
	}
	if rev, err := rel.Promote(context.Background(), img); err != nil || rev != 2 {
		t.Fatalf("promote again: rev %d, %v", rev, err)
	}
}
