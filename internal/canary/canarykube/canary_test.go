package canarykube

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canary"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/deploy/deploytest"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/promtest"
	"github.com/msctl/msctl/internal/routes"
	"github.com/msctl/msctl/internal/testcluster"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	testcluster.Main(m, &cluster, testcluster.Options{})
}

// interval is the tests' analysis interval: four scrapes of the test
// Prometheus, so a rate over it has samples.
const interval = 4 * time.Second

// env is one test's world: a namespace with the bundled project's user
// service deployed at v1, a real Prometheus scraping an exporter of Istio's
// metrics for that namespace, and a canary.Cluster wired to both.
type env struct {
	t       testing.TB
	d       *deploy.Deployer
	prom    *promtest.Prometheus
	exp     *promtest.IstioExporter
	cluster *canary.Cluster
	ns      string

	mu     sync.Mutex
	events []canary.Event
}

// canarySettings changes the bundled project's canary for a test.
type canarySettings func(c *config.Canary)

func steps(ws ...any) canarySettings {
	return func(c *config.Canary) {
		c.Steps = nil
		for _, w := range ws {
			switch w := w.(type) {
			case int:
				c.Steps = append(c.Steps, config.Step{Weight: w})
			case config.Step:
				c.Steps = append(c.Steps, w)
			}
		}
	}
}

func newEnv(t testing.TB, settings ...canarySettings) *env {
	t.Helper()
	p := deploytest.Project(t, cluster)
	p.Canary.Interval = config.Duration(interval)
	p.Canary.Analysis.MinRequests = 10
	p.Canary.Analysis.MaxNoDataChecks = 3
	p.Canary.Analysis.MaxErrorChecks = 3
	p.Canary.Metrics = nil
	p.Canary.Thresholds.MaxP95Latency = config.Duration(500 * time.Millisecond)
	for _, s := range settings {
		s(&p.Canary)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d := deploytest.Deployer(t, cluster, p)
	e := &env{t: t, d: d, ns: p.Namespace, exp: promtest.NewIstioExporter(t)}
	// Stable traffic from the start, so stable-relative checks have data.
	e.exp.SetTraffic(e.ns, "user", promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	e.prom = promtest.StartPrometheus(t, e.exp.Target())
	prom, err := analysis.NewPrometheus(e.prom.Addr(), nil)
	if err != nil {
		t.Fatal(err)
	}
	e.cluster = &canary.Cluster{
		Deployer: d, Prometheus: prom, Tick: 200 * time.Millisecond, ReleaseTimeout: time.Minute,
		PlanFor: func(s string) (canary.Plan, error) { return canary.PlanFor(p, s) },
		Events: func(ev canary.Event) {
			e.mu.Lock()
			defer e.mu.Unlock()
			e.events = append(e.events, ev)
		},
	}
	res, err := d.Deploy(ctx, deploy.Options{Services: []string{"user"}, ImageTag: "v1", Wait: true, Atomic: true, Lock: holder("setup")})
	if err != nil {
		t.Fatalf("deploying v1: %v %+v", err, res)
	}
	return e
}

func holder(name string) deploy.LockOptions {
	return deploy.LockOptions{Holder: kube.CurrentHolder(name, func(string) string { return "" }), TTL: 5 * time.Second}
}

// canaryTraffic sets what the canary workload receives from now on.
func (e *env) canaryTraffic(tr promtest.Traffic) { e.exp.SetTraffic(e.ns, "user-canary", tr) }

func (e *env) run(o canary.RunOptions) (*canarystate.State, error) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	return e.cluster.Run(ctx, "user", o, holder("ci-job"))
}

var v2 = imageref.Ref{Repository: "localhost:5000/user", Tag: "v2"}

// weight reads the canary's weight from the live VirtualService.
func (e *env) weight() int {
	e.t.Helper()
	w, err := e.d.CanaryWeight(context.Background(), "user")
	if err != nil {
		e.t.Fatal(err)
	}
	return w
}

func (e *env) virtualService() *unstructured.Unstructured {
	e.t.Helper()
	vs, err := e.d.Applier().Get(context.Background(), "networking.istio.io/v1", "VirtualService", e.ns, "user")
	if err != nil || vs == nil {
		e.t.Fatalf("VirtualService: %v", err)
	}
	return vs
}

// canaryReleaseGone checks the canary's Deployment is gone.
func (e *env) canaryReleaseGone() bool {
	_, err := e.d.Cluster.Clientset.AppsV1().Deployments(e.ns).Get(context.Background(), "user-canary", metav1.GetOptions{})
	return apierrors.IsNotFound(err)
}

func (e *env) stable() (string, int) {
	e.t.Helper()
	img, rev, err := e.d.StableRelease(context.Background(), "user")
	if err != nil {
		e.t.Fatal(err)
	}
	return img.String(), rev
}

// weightsSet lists the canary weights the driver set, in order.
func (e *env) weightsSet() []int {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []int
	for _, ev := range e.events {
		if ev.Type == "traffic" {
			var w int
			fmt.Sscanf(ev.Message, "traffic %d%%", &w)
			out = append(out, w)
		}
	}
	return out
}

func TestHealthyCanaryIsPromoted(t *testing.T) {
	e := newEnv(t, steps(50, 100))
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	st, err := e.run(canary.RunOptions{Image: v2})
	if err != nil {
		t.Fatalf("%v\n%+v", err, st)
	}
	img, rev := e.stable()
	if st.Phase != canarystate.Succeeded || img != v2.String() || rev != 2 || !e.canaryReleaseGone() || e.weight() != 0 {
		t.Errorf("phase %s (%s), stable %s revision %d, canary gone %v, weight %d", st.Phase, st.Reason, img, rev, e.canaryReleaseGone(), e.weight())
	}
	if got := fmt.Sprint(e.weightsSet()); got != "[50 100 0]" {
		t.Errorf("weights set %s", got)
	}
}

func TestErrorsFromStepTwoRollBack(t *testing.T) {
	e := newEnv(t, steps(25, 50, 100))
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	go func() {
		// Errors start once the canary reaches its second step.
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if w := fmt.Sprint(e.weightsSet()); strings.HasPrefix(w, "[25 50") {
				e.canaryTraffic(promtest.Traffic{RPS: 20, ErrorRatio: 0.2, P50MS: 20, P99MS: 80})
				return
			}
		}
	}()
	st, err := e.run(canary.RunOptions{Image: v2})
	if errkind.Of(err) != errkind.RolledBack || st.Phase != canarystate.RolledBack {
		t.Fatalf("outcome %v, phase %s", err, st.Phase)
	}
	img, rev := e.stable()
	if img != "localhost:5000/user:v1" || rev != 1 || !e.canaryReleaseGone() || e.weight() != 0 {
		t.Errorf("stable %s revision %d, canary gone %v, weight %d", img, rev, e.canaryReleaseGone(), e.weight())
	}
	// Weight 0 was the first thing written after the decision.
	if got := fmt.Sprint(e.weightsSet()); got != "[25 50 0]" {
		t.Errorf("weights set %s", got)
	}
	t.Logf("rolled back: %s", st.Reason)
}

func TestLatencyRegressionRollsBack(t *testing.T) {
	e := newEnv(t, steps(50, 100))
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 400, P99MS: 2000})
	st, err := e.run(canary.RunOptions{Image: v2})
	if errkind.Of(err) != errkind.RolledBack || !strings.Contains(st.Reason, "request-duration") || e.weight() != 0 {
		t.Fatalf("outcome %v, reason %q, weight %d", err, st.Reason, e.weight())
	}
}

// A canary no request reaches (no pod ready) is seen by the callers'
// sidecars alone: it fails and is rolled back, not held for want of data.
func TestUnreachableCanaryRollsBack(t *testing.T) {
	e := newEnv(t, steps(50, 100))
	e.canaryTraffic(promtest.Traffic{RPS: 20, Unreached: true})
	st, err := e.run(canary.RunOptions{Image: v2})
	if errkind.Of(err) != errkind.RolledBack || !strings.Contains(st.Reason, "request-success-rate") || e.weight() != 0 {
		t.Fatalf("outcome %v, phase %s, reason %q, weight %d", err, st.Phase, st.Reason, e.weight())
	}
	t.Logf("rolled back: %s", st.Reason)
}

func TestNoTrafficIsHeldThenInconclusive(t *testing.T) {
	e := newEnv(t, steps(50, 100))
	st, err := e.run(canary.RunOptions{Image: v2})
	if errkind.Of(err) != errkind.Inconclusive || st.Phase != canarystate.Inconclusive || st.Counters.NoData != 3 {
		t.Fatalf("outcome %v, state %s %+v", err, st.Phase, st.Counters)
	}
	if img, _ := e.stable(); img != "localhost:5000/user:v1" || e.weight() != 0 || !e.canaryReleaseGone() {
		t.Errorf("stable %s, weight %d", img, e.weight())
	}
	if got := fmt.Sprint(e.weightsSet()); got != "[50 0]" {
		t.Errorf("weights set %s: the weight must hold at the first step", got)
	}
}

func TestHealthyAtLowTrafficIsNotRolledBack(t *testing.T) {
	e := newEnv(t, steps(50, 100), func(c *config.Canary) { c.Analysis.MinRequests = 2 })
	e.canaryTraffic(promtest.Traffic{RPS: 1, P50MS: 20, P99MS: 80})
	st, err := e.run(canary.RunOptions{Image: v2})
	if err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("outcome %v, state %s: %s", err, st.Phase, st.Reason)
	}
}

func TestManualGate(t *testing.T) {
	e := newEnv(t, steps(25, config.Step{Pause: &config.Pause{}}, 100))
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	st, err := e.run(canary.RunOptions{Image: v2})
	if errkind.Of(err) != errkind.Paused || st.Phase != canarystate.Paused || e.weight() != 25 {
		t.Fatalf("outcome %v, phase %s, weight %d", err, st.Phase, e.weight())
	}
	if st, err = e.cluster.Act(context.Background(), "user", canarystate.ActionPromote, false, holder("alice")); err != nil || st.Step != 2 {
		t.Fatalf("promote: %v %+v", err, st)
	}
	st, err = e.run(canary.RunOptions{})
	if err != nil || st.Phase != canarystate.Succeeded {
		t.Fatalf("run after promote: %v %s", err, st.Phase)
	}
}

func TestAbortFromASecondProcessStopsTheDriver(t *testing.T) {
	e := newEnv(t, steps(10, 100), func(c *config.Canary) { c.Interval = config.Duration(time.Hour) })
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	done := make(chan error, 1)
	go func() { _, err := e.run(canary.RunOptions{Image: v2}); done <- err }()
	for deadline := time.Now().Add(time.Minute); e.weight() != 10; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the canary never reached its first step")
		}
	}
	start := time.Now()
	if _, err := e.cluster.Act(context.Background(), "user", canarystate.ActionAbort, false, holder("bob")); err != nil {
		t.Fatal(err)
	}
	acted := time.Since(start)
	err := <-done
	if errkind.Of(err) != errkind.RolledBack || e.weight() != 0 || !e.canaryReleaseGone() {
		t.Fatalf("outcome %v, weight %d", err, e.weight())
	}
	if acted > 2*time.Second {
		t.Errorf("the driver took %s to take the abort", acted)
	}
}

func TestABMatchAndMirrorSteps(t *testing.T) {
	match := &config.Match{Headers: map[string]config.StringMatch{"x-beta": {Exact: "1"}}}
	e := newEnv(t, steps(config.Step{Mirror: 30}, config.Step{Match: match, Iterations: 1}, 100),
		func(c *config.Canary) { c.Interval = config.Duration(time.Hour) })
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	if _, err := e.cluster.Run(context.Background(), "user", canary.RunOptions{Image: v2, Once: true}, holder("ci")); err != nil {
		t.Fatal(err)
	}
	if tr := routes.ReadTraffic(e.virtualService()); tr.Mirror != 30 || tr.Weight != 0 {
		t.Errorf("mirror step: the VirtualService reads %+v", tr)
	}
	if _, err := e.cluster.Act(context.Background(), "user", canarystate.ActionPromote, false, holder("alice")); err != nil {
		t.Fatal(err)
	}
	tr := routes.ReadTraffic(e.virtualService())
	if tr.Match == nil || tr.Match.Headers["x-beta"].Exact != "1" || tr.Weight != 0 {
		t.Errorf("match step: the VirtualService reads %+v", tr)
	}
	if _, err := e.cluster.Act(context.Background(), "user", canarystate.ActionAbort, false, holder("alice")); err != nil {
		t.Fatal(err)
	}
}

func TestPrometheusStoppedHoldsThenInconclusive(t *testing.T) {
	e := newEnv(t, steps(50, 100))
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	e.prom.Stop()
	st, err := e.run(canary.RunOptions{Image: v2})
	if errkind.Of(err) != errkind.Inconclusive || !strings.Contains(st.Reason, e.prom.Addr()) || st.Counters.Errors != 3 {
		t.Fatalf("outcome %v, reason %q, counters %+v", err, st.Reason, st.Counters)
	}
	if got := fmt.Sprint(e.weightsSet()); got != "[50 0]" {
		t.Errorf("weights set %s: held at the first step", got)
	}
}

func TestDeployDuringACanaryIsRefused(t *testing.T) {
	e := newEnv(t, steps(10, 100), func(c *config.Canary) { c.Interval = config.Duration(time.Hour) })
	if _, err := e.cluster.Run(context.Background(), "user", canary.RunOptions{Image: v2, Once: true}, holder("ci")); err != nil {
		t.Fatal(err)
	}
	_, err := e.d.Deploy(context.Background(), deploy.Options{Services: []string{"user"}, ImageTag: "v3", Wait: true, Lock: holder("other")})
	var busy *deploy.CanaryInProgressError
	if !errors.As(err, &busy) || !strings.Contains(err.Error(), "msctl canary abort user") {
		t.Fatalf("deploy during the canary: %v", err)
	}
	if img, rev := e.stable(); img != "localhost:5000/user:v1" || rev != 1 {
		t.Errorf("the refused deploy changed the stable: %s %d", img, rev)
	}
}

func TestTwoDriversOneProceeds(t *testing.T) {
	e := newEnv(t, steps(10, 100), func(c *config.Canary) { c.Interval = config.Duration(time.Hour) })
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := e.cluster.Run(ctx, "user", canary.RunOptions{Image: v2}, holder("first"))
		done <- err
	}()
	for deadline := time.Now().Add(time.Minute); e.weight() != 10; time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the first driver never reached its first step")
		}
	}
	_, err := e.cluster.Run(context.Background(), "user", canary.RunOptions{}, holder("second"))
	var held *kube.LockHeldError
	if !errors.As(err, &held) || !strings.HasPrefix(held.Holder, "first (") {
		t.Fatalf("second driver: %v", err)
	}
	cancel()
	<-done
}
