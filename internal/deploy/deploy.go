// Package deploy puts a project on a cluster and reads it back: a Helm
// release per service through Helm's SDK (server-side apply, kstatus wait,
// rollback on failure), and the Istio objects by server-side apply outside
// Helm, with the live canary weight kept. It renders only through
// internal/render and writes only under a per-service Lease, so the cluster
// stays the one source of truth and a rerun after a crash converges.
package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
	"github.com/msctl/msctl/manifests"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	helmkube "helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

// HelmFieldManager owns the fields of the chart's objects. Helm's SDK would
// name its manager after the binary, "msctl", and so share it with the Istio
// objects msctl applies itself.
const HelmFieldManager = "msctl-helm"

func init() { helmkube.ManagedFieldsManager = HelmFieldManager }

// DigestLabel is the release label holding a digest of the chart and
// values, so an identical redeploy is recognised without a Helm round trip.
const DigestLabel = "msctl.dev/digest"

// Options tune a deploy.
type Options struct {
	// Services to deploy; empty means all, in dependency order.
	Services []string
	ImageTag string
	// Wait for every object to be ready (kstatus); Timeout bounds it.
	Wait    bool
	Timeout time.Duration
	// Atomic rolls a failed release back to its last good revision.
	Atomic bool
	// NoIstio skips the Istio objects, for clusters without Istio.
	NoIstio bool
	// Holder names this run in the services' Leases (CI job id, user@host).
	Holder string
	// Parallel bounds how many services deploy at once.
	Parallel int
	// Values are extra chart values for every service, as render's.
	Values []map[string]any
	// LockTTL is how long a Lease outlives a holder that stopped renewing.
	LockTTL time.Duration
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
	Cluster  *kube.Cluster
	Project  *config.Project
	Log      *slog.Logger
	Progress func(Event)

	applier *kube.Applier
}

// New prepares a Deployer; it talks to the cluster only when asked.
func New(c *kube.Cluster, p *config.Project, log *slog.Logger) (*Deployer, error) {
	a, err := kube.NewApplier(c.Config)
	if err != nil {
		return nil, err
	}
	return &Deployer{Cluster: c, Project: p, Log: log, Progress: func(Event) {}, applier: a}, nil
}

// Failed is returned when any service failed; Results says which and why.
type Failed struct {
	Results []Result
}

// TimedOut reports whether a service failed by not becoming ready in time.
func (e *Failed) TimedOut() bool {
	for _, r := range e.Results {
		if (r.State == StateFailed || r.State == StateRolledBack) && r.TimedOut {
			return true
		}
	}
	return false
}

func (e *Failed) Error() string {
	var names []string
	for _, r := range e.Results {
		if r.State == StateFailed || r.State == StateRolledBack {
			names = append(names, fmt.Sprintf("%s (%s)", r.Service, r.Message))
		}
	}
	return fmt.Sprintf("deploy failed: %s", strings.Join(names, ", "))
}

// Deploy deploys the selected services, dependencies first, and returns a
// result per service. A lock held by another run fails the whole deploy at
// once with *kube.LockHeldError, before any service is written.
func (d *Deployer) Deploy(ctx context.Context, opts Options) ([]Result, error) {
	opts = withDefaults(opts)
	services := opts.Services
	if len(services) == 0 {
		services = d.Project.ServiceNames()
	}
	start := time.Now()
	caps, err := d.preflight(ctx, opts.NoIstio)
	if err != nil {
		return nil, err
	}
	d.Log.Debug("preflight passed", "took", time.Since(start))
	apis := caps.APIVersions
	// Render everything once before writing anything: bad values fail the
	// whole deploy here, with nothing half-applied.
	if _, err := render.Render(d.Project, render.Options{
		Services: services, ImageTag: opts.ImageTag, APIVersions: apis, Values: opts.Values,
	}); err != nil {
		return nil, err
	}
	// The Leases live in the namespace, so it comes first; the other
	// project objects wait for the locks, so a run locked out changes
	// nothing but an existing namespace's labels.
	isNamespace := func(o render.Object) bool { return o.GetKind() == "Namespace" }
	if err := d.applyProject(ctx, opts, isNamespace); err != nil {
		return nil, err
	}
	held, err := d.lockAll(ctx, services, opts)
	if err != nil {
		return nil, err
	}
	defer held.releaseAll(ctx)
	if err := d.applyProject(ctx, opts, func(o render.Object) bool { return !isNamespace(o) }); err != nil {
		return nil, err
	}

	results := map[string]Result{}
	var mu sync.Mutex
	for _, level := range levels(d.Project, services) {
		sem := make(chan struct{}, opts.Parallel)
		var wg sync.WaitGroup
		for _, name := range level {
			d.Progress(Event{Service: name, State: StateQueued})
			wg.Go(func() {
				sem <- struct{}{}
				defer func() { <-sem }()
				start := time.Now()
				r := d.deployService(ctx, name, opts, caps)
				held.release(ctx, name)
				r.Service, r.Duration = name, time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				results[name] = r
				d.Progress(Event{Service: name, State: r.State, Message: r.Message})
			})
		}
		wg.Wait()
		// Services of the next level call these: don't go on past a failure.
		for _, name := range level {
			if s := results[name].State; s == StateFailed || s == StateRolledBack {
				return collect(services, results), &Failed{Results: collect(services, results)}
			}
		}
	}
	return collect(services, results), nil
}

func withDefaults(o Options) Options {
	if o.ImageTag == "" {
		o.ImageTag = "latest"
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Minute
	}
	if o.Parallel <= 0 {
		o.Parallel = 4
	}
	if o.LockTTL <= 0 {
		o.LockTTL = 30 * time.Second
	}
	return o
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
// the gateway, mesh policies and dashboard.
func (d *Deployer) applyProject(ctx context.Context, opts Options, which func(render.Object) bool) error {
	objs, err := render.ProjectObjects(d.Project)
	if err != nil {
		return err
	}
	for _, o := range objs {
		if !which(o) || opts.NoIstio && o.Source == render.SourceIstio {
			continue
		}
		if _, err := d.applier.Apply(ctx, o.Unstructured, kube.ApplyOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// deployService deploys one service whose Lease the run holds.
func (d *Deployer) deployService(ctx context.Context, name string, opts Options, caps *common.Capabilities) Result {
	s := d.Project.Service(name)
	weight, err := d.CanaryWeight(ctx, name)
	if err != nil {
		return Result{State: StateFailed, Message: err.Error()}
	}
	res, err := render.Render(d.Project, render.Options{
		Services: []string{name}, ImageTag: opts.ImageTag, APIVersions: caps.APIVersions, Values: opts.Values,
		CanaryWeights: map[string]int{name: weight},
	})
	if err != nil {
		return Result{State: StateFailed, Message: err.Error()}
	}
	image := render.Image(d.Project, s) + ":" + opts.ImageTag

	cfg, err := d.helm(caps)
	if err != nil {
		return Result{State: StateFailed, Message: err.Error()}
	}
	d.Progress(Event{Service: name, State: StateDeploying})
	if msg, err := recoverPending(cfg, name, opts); err != nil {
		return Result{State: StateFailed, Message: err.Error()}
	} else if msg != "" {
		d.Progress(Event{Service: name, State: StateRecovering, Message: msg})
	}
	helmStart := time.Now()
	rel, state, err := d.upgrade(ctx, cfg, s, opts)
	d.Log.Debug("helm done", "service", name, "state", state, "took", time.Since(helmStart))
	result := Result{State: state, Image: image}
	if rel != nil {
		result.Revision = rel.Version
	}
	if err != nil {
		// Explain before rolling back: the rollback removes the bad pods.
		result.Message = d.whyNotReady(ctx, name, err)
		result.TimedOut = errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "context deadline exceeded")
		if opts.Atomic {
			note, rbErr := rollBack(cfg, name, rel, opts)
			if rbErr != nil {
				result.Message += "; " + rbErr.Error()
			} else {
				result.State = StateRolledBack
				result.Message += "; " + note
			}
		}
		return result
	}
	if !opts.NoIstio {
		for _, o := range res.Objects {
			if o.Source != render.SourceIstio {
				continue
			}
			if _, err := d.applier.Apply(ctx, o.Unstructured, kube.ApplyOptions{}); err != nil {
				return Result{State: StateFailed, Image: image, Revision: result.Revision, Message: err.Error()}
			}
		}
	}
	return result
}

// upgrade installs or upgrades the service's release, unless the last
// deployed revision has the same chart and values.
func (d *Deployer) upgrade(ctx context.Context, cfg *action.Configuration, s *config.Service, opts Options) (*releasev1.Release, State, error) {
	ch, err := render.ServiceChart()
	if err != nil {
		return nil, StateFailed, err
	}
	values := render.ServiceValues(d.Project, s, opts.ImageTag, opts.Values)
	digest, err := releaseDigest(values)
	if err != nil {
		return nil, StateFailed, err
	}
	labels := map[string]string{DigestLabel: digest}
	wait := helmkube.HookOnlyStrategy
	if opts.Wait {
		wait = helmkube.StatusWatcherStrategy
	}
	last, err := lastRelease(cfg, s.Name)
	if err != nil {
		return nil, StateFailed, err
	}
	if last == nil {
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace = s.Name, d.Project.Namespace
		in.ServerSideApply, in.ForceConflicts = true, true
		in.WaitStrategy, in.Timeout = wait, opts.Timeout
		in.Labels = labels
		in.Description = "msctl deploy " + opts.ImageTag
		// The API server validates every field of a server-side apply;
		// Helm's own check would first download the OpenAPI schema.
		in.DisableOpenAPIValidation = true
		// render checked these values against the chart's schema already,
		// with the schema compiled once per process instead of per release.
		in.SkipSchemaValidation = true
		// Objects left by an install that died before recording a release.
		in.TakeOwnership = true
		r, err := in.RunWithContext(ctx, ch, values)
		return asRelease(r), stateAfter(err), err
	}
	if last.Info.Status == rcommon.StatusDeployed && last.Labels[DigestLabel] == digest {
		return last, StateUnchanged, nil
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = d.Project.Namespace
	up.ServerSideApply, up.ForceConflicts = "true", true
	up.WaitStrategy, up.Timeout = wait, opts.Timeout
	up.Labels = labels
	up.MaxHistory = 10
	up.Description = "msctl deploy " + opts.ImageTag
	up.DisableOpenAPIValidation = true
	up.SkipSchemaValidation = true
	r, err := up.RunWithContext(ctx, s.Name, ch, values)
	return asRelease(r), stateAfter(err), err
}

func stateAfter(err error) State {
	if err != nil {
		return StateFailed
	}
	return StateDeployed
}

// rollBack undoes a failed revision: back to the newest good one, or, for
// a first install, away altogether.
func rollBack(cfg *action.Configuration, name string, failed *releasev1.Release, opts Options) (string, error) {
	below := 0
	if failed != nil {
		below = failed.Version
	}
	good, err := lastGoodRevision(cfg, name, below)
	if err != nil {
		return "", err
	}
	if good == 0 {
		if err := uninstall(cfg, name); err != nil {
			return "", fmt.Errorf("removing the failed first install: %w", err)
		}
		return "removed the failed first install", nil
	}
	if err := helmRollback(cfg, name, good, opts.Timeout); err != nil {
		return "", fmt.Errorf("rolling back to revision %d: %w", good, err)
	}
	return fmt.Sprintf("rolled back to revision %d", good), nil
}

// lastGoodRevision is the newest revision below `below` (0: any) that was
// deployed at some point, or 0 when there is none.
func lastGoodRevision(cfg *action.Configuration, name string, below int) (int, error) {
	hist, err := cfg.Releases.History(name)
	if err != nil {
		return 0, err
	}
	good := 0
	for _, h := range hist {
		r := asRelease(h)
		if r != nil && (below == 0 || r.Version < below) && r.Version > good &&
			(r.Info.Status == rcommon.StatusDeployed || r.Info.Status == rcommon.StatusSuperseded) {
			good = r.Version
		}
	}
	return good, nil
}

// helmRollback returns a release to revision with msctl's apply settings and
// waits until it is ready.
func helmRollback(cfg *action.Configuration, name string, revision int, timeout time.Duration) error {
	rb := action.NewRollback(cfg)
	rb.Version = revision
	rb.ServerSideApply = "true"
	rb.ForceConflicts = true
	rb.WaitStrategy = helmkube.StatusWatcherStrategy
	rb.Timeout = timeout
	return rb.Run(name)
}

// uninstall removes a release and its objects without waiting for them to go.
func uninstall(cfg *action.Configuration, name string) error {
	un := action.NewUninstall(cfg)
	un.WaitStrategy = helmkube.HookOnlyStrategy
	un.IgnoreNotFound = true
	_, err := un.Run(name)
	return err
}

func asRelease(r any) *releasev1.Release {
	switch rel := r.(type) {
	case *releasev1.Release:
		return rel
	case releasev1.Release:
		return &rel
	}
	return nil
}

// releaseDigest identifies what a release would deploy: the chart's files
// and the values.
func releaseDigest(values map[string]any) (string, error) {
	h := sha256.New()
	err := fs.WalkDir(manifests.Charts, manifests.ServiceChart, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := fs.ReadFile(manifests.Charts, p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	if err != nil {
		return "", err
	}
	v, err := json.Marshal(values) // map keys are sorted: stable
	if err != nil {
		return "", err
	}
	h.Write(v)
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}

// helm returns a Helm configuration for one action. Each service gets its
// own: an action.Configuration is not safe for concurrent use. They share
// the cluster's RESTClientGetter, which caches API discovery. caps, when
// known, spares Helm rediscovering the whole API.
func (d *Deployer) helm(caps *common.Capabilities) (*action.Configuration, error) {
	cfg := action.NewConfiguration()
	cfg.SetLogger(d.Log.Handler())
	if err := cfg.Init(d.Cluster.Getter, d.Project.Namespace, "secret"); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	if caps != nil {
		c := *caps
		cfg.Capabilities = &c
	}
	return cfg, nil
}

// lastRelease returns the newest revision of a release, or nil.
func lastRelease(cfg *action.Configuration, name string) (*releasev1.Release, error) {
	r, err := cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading release %s: %w", name, err)
	}
	return asRelease(r), nil
}

// recoverPending repairs a release left pending by a run that was killed
// mid-operation. The caller holds the service's Lease, so no live run owns
// that pending state. It rolls back to the last deployed revision, or
// removes a release that never got one.
func recoverPending(cfg *action.Configuration, name string, opts Options) (string, error) {
	last, err := lastRelease(cfg, name)
	if err != nil || last == nil || !last.Info.Status.IsPending() {
		return "", err
	}
	stuck := last.Info.Status
	good, err := lastGoodRevision(cfg, name, last.Version)
	if err != nil {
		return "", err
	}
	if good == 0 {
		if err := uninstall(cfg, name); err != nil {
			return "", fmt.Errorf("removing %s's pending first install: %w", name, err)
		}
		return fmt.Sprintf("revision %d was left %s by an interrupted run; removed it to install afresh", last.Version, stuck), nil
	}
	// Mark the stuck revision failed so Helm's rollback accepts to run.
	last.SetStatus(rcommon.StatusFailed, "interrupted; recovered by msctl")
	if err := cfg.Releases.Update(last); err != nil {
		return "", err
	}
	if err := helmRollback(cfg, name, good, opts.Timeout); err != nil {
		return "", fmt.Errorf("rolling %s back from interrupted revision %d: %w", name, last.Version, err)
	}
	return fmt.Sprintf("revision %d was left %s by an interrupted run; rolled back to revision %d", last.Version, stuck, good), nil
}

// CanaryWeight reads the canary's share of traffic from the live
// VirtualService, 0 when there is none: a redeploy keeps a running canary.
func (d *Deployer) CanaryWeight(ctx context.Context, service string) (int, error) {
	vs, err := d.applier.Get(ctx, "networking.istio.io/v1", "VirtualService", d.Project.Namespace, service)
	if err != nil || vs == nil {
		return 0, err
	}
	return canaryWeight(vs), nil
}

func canaryWeight(vs *unstructured.Unstructured) int {
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, r := range routes {
		route, _ := r.(map[string]any)
		if route["name"] == "pin-canary" {
			continue
		}
		dests, _, _ := unstructured.NestedSlice(route, "route")
		for _, dst := range dests {
			m, _ := dst.(map[string]any)
			if subset, _, _ := unstructured.NestedString(m, "destination", "subset"); subset == render.CanarySubset {
				w, _, _ := unstructured.NestedInt64(m, "weight")
				return int(w)
			}
		}
	}
	return 0
}
