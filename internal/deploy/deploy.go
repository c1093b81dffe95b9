// Package deploy puts a project on a cluster and reads it back: a Helm
// release per service through Helm's SDK (server-side apply, kstatus wait,
// rollback on failure), and the Istio objects by server-side apply outside
// Helm, with the live canary weight kept.
//
// It renders only through internal/render, and writes only while it holds
// the services' Leases, checking them before every write: the cluster stays
// the one source of truth, a rerun after a crash converges, and a run that
// lost its lock stops writing. It never prints; progress goes to Progress.
package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
	"github.com/msctl/msctl/internal/routes"
	"helm.sh/helm/v4/pkg/chart/common"
)

// State is where one service's deploy stands.
type State string

// States a service goes through, and how it ends.
const (
	StateQueued     State = "queued"
	StateDeploying  State = "deploying"
	StateRecovering State = "recovering"
	StateDeployed   State = "deployed"
	StateUnchanged  State = "unchanged"
	StateFailed     State = "failed"
	StateRolledBack State = "rolled back"
	StateDestroyed  State = "destroyed"
)

// Failed reports whether the service's deploy failed, whether or not its
// release was rolled back afterwards.
func (s State) Failed() bool { return s == StateFailed || s == StateRolledBack }

// Finished reports whether the state is an end state of a deploy.
func (s State) Finished() bool {
	return s.Failed() || s == StateDeployed || s == StateUnchanged || s == StateDestroyed
}

// LockOptions say under which identity, and how, a run takes the Leases of
// the services it writes.
type LockOptions struct {
	Holder kube.Holder
	// TTL is how long a Lease outlives a run that stopped renewing it;
	// 0 means kube.DefaultLockTTL.
	TTL time.Duration
	// Steal takes over Leases that other runs hold, on purpose.
	Steal bool
}

// Options tune a deploy.
type Options struct {
	// Services to deploy; empty means all, in dependency order.
	Services []string
	ImageTag string
	// Images pins a service's image (by tag or digest); it wins over
	// ImageTag.
	Images map[string]imageref.Ref
	// Wait for every object to be ready (kstatus); Timeout bounds it.
	Wait    bool
	Timeout time.Duration
	// Atomic rolls a failed release back to its last good revision.
	Atomic bool
	// RollbackTimeout bounds that rollback on its own: the failed upgrade
	// may have used up all of Timeout.
	RollbackTimeout time.Duration
	// NoIstio skips the Istio objects, for clusters without Istio.
	NoIstio bool
	// Parallel bounds how many services deploy at once.
	Parallel int
	// Values are extra chart values for every service, as render's.
	Values []map[string]any
	Lock   LockOptions
	// Progress hears each service's state changes; nil hears nothing.
	Progress func(Event)
	// Description is the release revision's description; default
	// "msctl deploy TAG".
	Description string
}

// image is the image a service deploys at: pinned, or at ImageTag.
func (o Options) image(p *config.Project, s *config.Service) imageref.Ref {
	if img, ok := o.Images[s.Name]; ok {
		return img
	}
	return render.ServiceImage(p, s, o.ImageTag)
}

func (o Options) withDefaults() Options {
	if o.ImageTag == "" {
		o.ImageTag = "latest"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.RollbackTimeout <= 0 {
		o.RollbackTimeout = max(o.Timeout, 2*time.Minute)
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.Progress == nil {
		o.Progress = func(Event) {}
	}
	return o
}

// Event reports progress of one service.
type Event struct {
	Service string
	State   State
	Message string
}

// Result is how one service's deploy ended.
type Result struct {
	Service  string        `json:"service"`
	State    State         `json:"state"`
	Revision int           `json:"revision,omitempty"`
	Image    string        `json:"image,omitempty"`
	Message  string        `json:"message,omitempty"`
	Duration time.Duration `json:"durationNs"`
	// TimedOut is set when the service failed by not being ready in time.
	TimedOut bool `json:"timedOut,omitempty"`
}

// Deployer deploys one project to one cluster.
type Deployer struct {
	Cluster *kube.Cluster
	Project *config.Project
	Log     *slog.Logger
	// Now is the clock; tests replace it.
	Now func() time.Time

	applier *kube.Applier
}

// New prepares a Deployer; it talks to the cluster only when asked.
func New(c *kube.Cluster, p *config.Project, log *slog.Logger) (*Deployer, error) {
	a, err := kube.NewApplier(c.Config)
	if err != nil {
		return nil, err
	}
	useHelmFieldManager()
	return &Deployer{Cluster: c, Project: p, Log: log, Now: time.Now, applier: a}, nil
}

// Applier is the Deployer's server-side applier, for reading back objects.
func (d *Deployer) Applier() *kube.Applier { return d.applier }

// Failed is returned when any service failed; Results says which and why.
type Failed struct {
	Results []Result
	// Op names what failed in the message: deploy (the default) or
	// rollback.
	Op string
}

// ErrorKind is Timeout when a service failed by not being ready in time.
func (e *Failed) ErrorKind() errkind.Kind {
	for _, r := range e.Results {
		if r.State.Failed() && r.TimedOut {
			return errkind.Timeout
		}
	}
	return errkind.Failure
}

func (e *Failed) Error() string {
	var names []string
	for _, r := range e.Results {
		if r.State.Failed() {
			names = append(names, fmt.Sprintf("%s (%s)", r.Service, r.Message))
		}
	}
	op := e.Op
	if op == "" {
		op = "deploy"
	}
	return fmt.Sprintf("%s failed: %s", op, strings.Join(names, ", "))
}

// Deploy deploys the selected services, dependencies first, and returns a
// result per service. A lock held by another run fails the whole deploy at
// once with *kube.LockHeldError, before any service is written.
func (d *Deployer) Deploy(ctx context.Context, opts Options) ([]Result, error) {
	opts = opts.withDefaults()
	services := unique(opts.Services)
	if len(services) == 0 {
		services = d.Project.ServiceNames()
	}
	caps, err := d.preflight(ctx, opts.NoIstio)
	if err != nil {
		return nil, err
	}
	// Render everything once before writing anything: bad values fail the
	// whole deploy here, with nothing half-applied.
	if _, err := render.Render(d.Project, render.Options{
		Services: services, ImageTag: opts.ImageTag, Images: opts.Images, APIVersions: caps.APIVersions, Values: opts.Values,
	}); err != nil {
		return nil, err
	}
	// The Leases live in the namespace, so it comes first; the other
	// project objects wait for the locks, so a run locked out changes
	// nothing but an existing namespace's labels.
	isNamespace := func(o render.Object) bool { return o.GetKind() == "Namespace" }
	if err := d.applyProject(ctx, opts.NoIstio, isNamespace, nil); err != nil {
		return nil, err
	}
	held, err := d.lockAll(ctx, services, opts.Lock)
	if err != nil {
		return nil, err
	}
	defer held.releaseAll(ctx)
	if err := d.refuseDuringCanary(ctx, services); err != nil {
		return nil, err
	}
	if err := d.applyProject(ctx, opts.NoIstio, func(o render.Object) bool { return !isNamespace(o) }, held.check); err != nil {
		return nil, err
	}

	results := map[string]Result{}
	var mu sync.Mutex
	for _, level := range d.Project.Levels(services) {
		sem := make(chan struct{}, opts.Parallel)
		var wg sync.WaitGroup
		for _, name := range level {
			opts.Progress(Event{Service: name, State: StateQueued})
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				start := d.Now()
				r := d.deployService(ctx, name, opts, caps, held.lock(name))
				held.release(ctx, name)
				r.Service, r.Duration = name, d.Now().Sub(start)
				mu.Lock()
				defer mu.Unlock()
				results[name] = r
				opts.Progress(Event{Service: name, State: r.State, Message: r.Message})
			})
		}
		wg.Wait()
		// Services of the next level call these: don't go on past a failure.
		for _, name := range level {
			if results[name].State.Failed() {
				return collect(services, results), &Failed{Results: collect(services, results)}
			}
		}
	}
	return collect(services, results), nil
}

// unique drops repeated names, keeping the first of each: a service named
// twice is deployed once.
func unique(names []string) []string {
	var out []string
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

func collect(order []string, results map[string]Result) []Result {
	var out []Result
	for _, name := range order {
		if r, ok := results[name]; ok {
			out = append(out, r)
		}
	}
	return out
}

// applyProject applies the project-wide objects which selects: the
// namespace (with the labels Istio injection and Pod Security need) and
// the gateway, mesh policies and dashboard. check, when set, runs before
// each write.
func (d *Deployer) applyProject(ctx context.Context, noIstio bool, which func(render.Object) bool, check func() error) error {
	objs, err := render.ProjectObjects(d.Project)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if !which(o) || noIstio && o.Source == render.SourceIstio {
			continue
		}
		if check != nil {
			if err := check(); err != nil {
				return err
			}
		}
		if _, err := d.applier.Apply(ctx, o.Unstructured, kube.ApplyOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// deployService deploys one service under its held lock. Everything it
// writes waits for lock.Check, and Helm's work is cancelled when the lock
// is lost.
func (d *Deployer) deployService(ctx context.Context, name string, opts Options, caps *common.Capabilities, lock *kube.Lock) Result {
	ctx, cancel := lock.Bind(ctx)
	defer cancel()
	s := d.Project.Service(name)
	img := opts.image(d.Project, s)
	image := img.String()
	fail := func(err error) Result { return Result{State: StateFailed, Image: image, Message: oneLine(err.Error())} }
	weight, err := d.CanaryWeight(ctx, name)
	if err != nil {
		return fail(err)
	}
	res, err := render.Render(d.Project, render.Options{
		Services: []string{name}, ImageTag: opts.ImageTag, Images: opts.Images, APIVersions: caps.APIVersions, Values: opts.Values,
		CanaryWeights: map[string]int{name: weight},
	})
	if err != nil {
		return fail(err)
	}
	rel, err := d.releases(caps, lock)
	if err != nil {
		return fail(err)
	}
	opts.Progress(Event{Service: name, State: StateDeploying})
	if err := lock.Check(); err != nil {
		return fail(err)
	}
	if msg, err := rel.recoverPending(name, lock, opts.RollbackTimeout, d.Now()); err != nil {
		return fail(err)
	} else if msg != "" {
		opts.Progress(Event{Service: name, State: StateRecovering, Message: msg})
	}
	if err := lock.Check(); err != nil {
		return fail(err)
	}
	start := d.Now()
	values := render.ServiceValuesAt(d.Project, s, img, opts.Values)
	version, state, err := rel.upgrade(ctx, name, values, opts)
	result := Result{State: state, Image: image, Revision: version}
	if err != nil {
		return d.failedUpgrade(ctx, rel, name, version, err, d.Now().Sub(start), opts, lock)
	}
	if !opts.NoIstio {
		if err := d.applyIstio(ctx, name, res.Istio(name), lock.Check); err != nil {
			result.State, result.Message = StateFailed, oneLine(err.Error())
		}
	}
	return result
}

// istioSelector finds the Istio objects msctl applied for a service of the
// project; another project's in the same namespace are not among them.
func (d *Deployer) istioSelector(service string) string {
	return fmt.Sprintf("%s=%s,app.kubernetes.io/part-of=%s,app=%s", render.ManagedByLabel, render.ManagedBy, d.Project.Name, service)
}

// applyIstio applies a service's Istio objects, then deletes the ones msctl
// applied before that this render no longer produces. check runs before
// each write.
func (d *Deployer) applyIstio(ctx context.Context, service string, objs []render.Object, check func() error) error {
	want := map[string]bool{}
	for _, o := range objs {
		if err := check(); err != nil {
			return err
		}
		if _, err := d.applier.Apply(ctx, o.Unstructured, kube.ApplyOptions{}); err != nil {
			return err
		}
		want[o.GetKind()+"/"+o.GetName()] = true
	}
	selector := d.istioSelector(service)
	for _, gvk := range render.ServiceIstioKinds() {
		live, err := d.applier.List(ctx, gvk, d.Project.Namespace, selector)
		if err != nil {
			return err
		}
		for _, l := range live {
			if want[l.GetKind()+"/"+l.GetName()] {
				continue
			}
			if err := check(); err != nil {
				return err
			}
			if err := d.applier.Delete(ctx, &l); err != nil {
				return err
			}
		}
	}
	return nil
}

// failedUpgrade explains a failed upgrade from the pods' side and, with
// Atomic, rolls it back on its own deadline, unless the lock was lost: then
// the release is another run's to mend.
func (d *Deployer) failedUpgrade(ctx context.Context, rel *releases, name string, version int, err error, took time.Duration, opts Options, lock *kube.Lock) Result {
	result := Result{State: StateFailed, Revision: version, Image: opts.image(d.Project, d.Project.Service(name)).String()}
	if lost := lock.Check(); lost != nil {
		result.Message = lost.Error()
		return result
	}
	// Read the pods before rolling back: the rollback removes the bad ones.
	readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	why := d.whyNotReady(readCtx, name, err)
	result.TimedOut = timedOut(err, took, opts.Timeout)
	if result.TimedOut {
		result.Message = fmt.Sprintf("not ready within %s: %s", opts.Timeout, why)
	} else {
		result.Message = why
	}
	if !opts.Atomic {
		return result
	}
	note, rbErr := rel.rollBackFailed(name, version, opts.RollbackTimeout)
	if rbErr != nil {
		result.Message += "; " + oneLine(rbErr.Error())
		return result
	}
	result.State = StateRolledBack
	result.Message += "; " + note
	return result
}

// timedOut says whether an upgrade failed for want of time, whichever
// layer noticed: client-go's rate limiter refuses a request that would
// pass the deadline before the deadline arrives, with an untyped error
// (x/time/rate's) that is not context.DeadlineExceeded.
func timedOut(err error, took, timeout time.Duration) bool {
	return errors.Is(err, context.DeadlineExceeded) || took >= timeout ||
		(err != nil && strings.Contains(err.Error(), "would exceed context deadline"))
}

// CanaryWeight reads the canary's share of traffic from the live
// VirtualService, 0 when there is none: a redeploy keeps a running canary.
func (d *Deployer) CanaryWeight(ctx context.Context, service string) (int, error) {
	vs, err := d.applier.Get(ctx, "networking.istio.io/v1", "VirtualService", d.Project.Namespace, service)
	if err != nil {
		return 0, err
	}
	return routes.CanaryWeight(vs), nil
}
