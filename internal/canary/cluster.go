package canary

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
	"github.com/msctl/msctl/internal/routes"
)

// The cluster's ports: the state in a ConfigMap, traffic in the
// VirtualService rendered through render and applied like deploy does, the
// workloads as Helm releases through deploy's release operations.

// clusterTraffic renders the service's VirtualService with the canary's
// traffic as an input and applies it with the DestinationRules, in
// render's order, so that the canary's Service has its traffic policy
// before requests go to it (the service's last deploy may have been by an
// msctl that routed to a subset instead).
type clusterTraffic struct {
	d       *deploy.Deployer
	service string
}

func (c *clusterTraffic) Set(ctx context.Context, t routes.Traffic) error {
	res, err := render.Render(c.d.Project, render.Options{Services: []string{c.service}, Traffic: map[string]routes.Traffic{c.service: t}})
	if err != nil {
		return err
	}
	for _, o := range res.Istio(c.service) {
		if kind := o.GetKind(); kind != "DestinationRule" && kind != "VirtualService" {
			continue
		}
		if _, err := c.d.Applier().Apply(ctx, o.Unstructured, kube.ApplyOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// clusterReleases are the stable and canary Helm releases of a service.
type clusterReleases struct {
	d       *deploy.Deployer
	service string
	lock    *kube.Lock
	timeout time.Duration
}

func (c *clusterReleases) Stable(ctx context.Context) (imageref.Ref, int, error) {
	return c.d.StableRelease(ctx, c.service)
}

func (c *clusterReleases) DeployCanary(ctx context.Context, img imageref.Ref) error {
	err := c.d.DeployCanary(ctx, c.service, img, c.timeout, c.lock)
	if deploy.Transient(err) {
		return &TransientError{Err: err}
	}
	return err
}

func (c *clusterReleases) RemoveCanary(ctx context.Context) error {
	return c.d.RemoveCanary(ctx, c.service, c.timeout, c.lock)
}

func (c *clusterReleases) Promote(ctx context.Context, img imageref.Ref) (int, error) {
	r, err := c.d.PromoteStable(ctx, c.service, img, c.timeout, c.lock)
	return r.Revision, err
}

// ClusterPorts wires a driver of service to the cluster behind d, under
// lock, which the caller holds. timeout bounds each release operation.
func ClusterPorts(drv *Driver, d *deploy.Deployer, lock *kube.Lock, timeout time.Duration) {
	drv.Store = d.StateStore(drv.Service)
	drv.Traffic = &clusterTraffic{d: d, service: drv.Service}
	drv.Releases = &clusterReleases{d: d, service: drv.Service, lock: lock, timeout: timeout}
	drv.Lock = lock
}

// Cluster runs the canaries of a project's services on the cluster behind
// a Deployer, analysed against a Prometheus.
type Cluster struct {
	Deployer   *deploy.Deployer
	Prometheus analysis.Querier
	// PlanFor resolves the plan of a new canary of service; the command
	// line builds it from the project file. Its error stops only a new
	// canary (see Driver.NoPlan).
	PlanFor func(service string) (Plan, error)
	Events  func(Event)
	// ReleaseTimeout bounds each release operation (the canary's
	// workload becoming ready, the stable's upgrade at promotion).
	ReleaseTimeout time.Duration
	// Tick is how often a driver reads its state for requests.
	Tick time.Duration
	// Drain is how long a canary's workload outlives its route (see
	// Driver.Drain); zero means 2s, about what Istio takes to push a
	// route to every sidecar.
	Drain time.Duration
}

// driver builds a driver of service under lock.
func (c *Cluster) driver(service string, lock *kube.Lock) *Driver {
	plan, noPlan := c.PlanFor(service)
	drv := &Driver{
		Service: service, Plan: plan, NoPlan: noPlan, Events: c.Events, Tick: c.Tick, Now: c.Deployer.Now, Drain: cmp.Or(c.Drain, 2*time.Second),
		Analyzer: &analysis.Analyzer{Querier: c.Prometheus},
		Target: analysis.Target{Namespace: c.Deployer.Project.Namespace, Service: service,
			Canary: deploy.CanaryRelease(service), Stable: service},
	}
	ClusterPorts(drv, c.Deployer, lock, c.releaseTimeout())
	return drv
}

func (c *Cluster) releaseTimeout() time.Duration {
	if c.ReleaseTimeout <= 0 {
		return 5 * time.Minute
	}
	return c.ReleaseTimeout
}

// Run takes the service's lock and drives its canary (see Driver.Run). A
// second driver fails at once with *kube.LockHeldError.
func (c *Cluster) Run(ctx context.Context, service string, o RunOptions, lock deploy.LockOptions) (*canarystate.State, error) {
	l, err := c.Deployer.Lock(ctx, service, lock)
	if err != nil {
		return nil, err
	}
	return c.drive(ctx, service, l, o)
}

// drive runs a driver of service under the held lock l, and releases it.
func (c *Cluster) drive(ctx context.Context, service string, l *kube.Lock, o RunOptions) (*canarystate.State, error) {
	defer func() { _ = l.Release(context.WithoutCancel(ctx)) }()
	ctx, cancel := l.Bind(ctx)
	defer cancel()
	st, err := c.driver(service, l).Run(ctx, o)
	// A lost lock explains a failed run better than what it caused.
	if lost := l.Check(); lost != nil && err != nil && !errors.As(err, new(*OutcomeError)) {
		return st, lost
	}
	return st, err
}

// Act asks the service's running canary to promote, pause, resume or abort.
// A live driver acts on it within about a tick; with none, Act takes the
// lock and carries the action out itself.
func (c *Cluster) Act(ctx context.Context, service string, action canarystate.Action, full bool, lock deploy.LockOptions) (*canarystate.State, error) {
	var l *kube.Lock
	return actor{
		store: c.Deployer.StateStore(service), by: lock.Holder.Name, now: c.Deployer.Now(), tick: tickOr(c.Tick),
		lock: func() (string, error) {
			var err error
			l, err = c.Deployer.Lock(ctx, service, lock)
			var held *kube.LockHeldError
			if errors.As(err, &held) {
				return held.Holder, nil
			}
			return "", err
		},
		drive:   func(o RunOptions) (*canarystate.State, error) { return c.drive(ctx, service, l, o) },
		release: func() { _ = l.Release(context.WithoutCancel(ctx)) },
	}.act(ctx, service, action, full)
}

// actor is what Act needs of where canaries run.
type actor struct {
	store canarystate.Store
	by    string
	now   time.Time
	tick  time.Duration
	// lock takes the service's lock; when a driver holds it, it returns
	// the driver's holder and no error.
	lock func() (held string, err error)
	// drive runs a driver under the lock taken, and releases it.
	drive   func(RunOptions) (*canarystate.State, error)
	release func()
}

func (a actor) act(ctx context.Context, service string, action canarystate.Action, full bool) (*canarystate.State, error) {
	held, err := a.lock()
	switch {
	case err != nil:
		// Nothing written: a request no one may carry out is not left behind.
		return nil, err
	case held != "":
		// A driver runs: the request goes into the state for it to take.
		if _, err := Ask(ctx, a.store, service, action, full, a.by, a.now); err != nil {
			return nil, err
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		st, werr := Acknowledged(wctx, a.store, a.tick)
		if werr != nil {
			return st, fmt.Errorf("the driver of %s (%s) has not taken the %s request within 10s; it stays in the canary's state for the driver", service, held, action)
		}
		return st, dropped(st, action)
	}
	if _, err := Ask(ctx, a.store, service, action, full, a.by, a.now); err != nil {
		a.release()
		return nil, err
	}
	st, err := a.drive(RunOptions{Once: true})
	var oe *OutcomeError
	if errors.As(err, &oe) && (oe.Phase == canarystate.Paused || action == canarystate.ActionAbort) {
		return st, nil // what was asked for
	}
	return st, err
}

// dropped is the outcome of an action a live driver took but could not
// carry out, as the same action exits without a driver: a promote, pause
// or resume of a canary rolling back or ended other than by success.
func dropped(st *canarystate.State, action canarystate.Action) error {
	switch {
	case st == nil || action == canarystate.ActionAbort:
		return nil
	case st.Phase == canarystate.RollingBack:
		return &OutcomeError{Service: st.Service, Phase: cmp.Or(st.Ending, canarystate.RolledBack),
			Reason: fmt.Sprintf("%s not carried out: the canary is rolling back (%s)", action, st.Reason)}
	case st.Phase.Terminal() && st.Phase != canarystate.Succeeded:
		return Outcome(st)
	}
	return nil
}

// tickOr is how often a process reads a canary's state: tick, or 500ms.
func tickOr(tick time.Duration) time.Duration {
	if tick <= 0 {
		return 500 * time.Millisecond
	}
	return tick
}
