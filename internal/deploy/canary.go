package deploy

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
	helmkube "helm.sh/helm/v4/pkg/kube"
)

// The release operations a canary needs. A canary of service S is a second
// release, S-canary, of the same chart with track canary: its own
// Deployment (pods labelled version: canary), sharing the stable's Service,
// ConfigMap and Secret. The stable release is not touched until promotion.
// Every operation here runs under the service's lock, which the caller
// (internal/canary's driver) holds.

// CanaryRelease is the name of a service's canary release.
func CanaryRelease(service string) string { return service + "-canary" }

// CanaryInProgressError refuses a deploy of a service whose canary runs.
type CanaryInProgressError struct {
	Service string
	Phase   canarystate.Phase
	Step    string
}

func (e *CanaryInProgressError) Error() string {
	return fmt.Sprintf("service %s has a canary in progress (%s, %s); end it with msctl canary promote %s or msctl canary abort %s",
		e.Service, e.Phase, e.Step, e.Service, e.Service)
}

// StateStore is the store of a service's canary state in the project's
// namespace.
func (d *Deployer) StateStore(service string) *canarystate.ConfigMapStore {
	return &canarystate.ConfigMapStore{Client: d.Cluster.Clientset, Namespace: d.Project.Namespace, Service: service,
		Labels: map[string]string{render.ManagedByLabel: render.ManagedBy, "app": service}}
}

// refuseDuringCanary fails when a canary of any of the services has not
// ended. It runs with the services' locks held, so no canary can start
// between the check and the deploy.
func (d *Deployer) refuseDuringCanary(ctx context.Context, services []string) error {
	for _, name := range services {
		st, _, err := d.StateStore(name).Load(ctx)
		if err != nil {
			return err
		}
		if st != nil && st.Open() {
			return &CanaryInProgressError{Service: name, Phase: st.Phase,
				Step: fmt.Sprintf("step %d of %d, image %s", st.Step+1, len(st.Steps), st.CanaryImage)}
		}
	}
	return nil
}

// DeployCanary installs or upgrades the canary release of service at img
// and waits until it is ready, within timeout. It first holds the stable
// at the scale it has (see holdStable).
func (d *Deployer) DeployCanary(ctx context.Context, service string, img imageref.Ref, timeout time.Duration, lock *kube.Lock) error {
	if err := lock.Check(); err != nil {
		return err
	}
	ctx, cancel := lock.Bind(ctx)
	defer cancel()
	s := d.Project.Service(service)
	rel, err := d.releases(nil, lock)
	if err != nil {
		return err
	}
	stable, err := rel.stableValues(service)
	if err != nil {
		return err
	}
	values := render.ServiceValuesAt(d.Project, s, img, append(stable, map[string]any{"track": "canary"}))
	opts := Options{Wait: true, Timeout: timeout, Lock: LockOptions{Holder: kube.Holder{Nonce: lock.Nonce()}},
		Description: "msctl canary " + img.String()}.withDefaults()
	if _, err := rel.recoverPending(CanaryRelease(service), lock, opts.RollbackTimeout, d.Now()); err != nil {
		return err
	}
	if err := d.holdStable(ctx, service); Transient(err) {
		return err
	} else if err != nil {
		// A canary is no less right for a stable that may scale down.
		d.Log.Warn("the stable's scale is not held during the canary", "service", service, "error", err)
	}
	start := d.Now()
	_, _, err = rel.upgrade(ctx, CanaryRelease(service), values, opts)
	if err != nil {
		why := d.whyNotReady(context.WithoutCancel(ctx), service, err)
		return explained(err, timedOut(err, d.Now().Sub(start), timeout), fmt.Sprintf("canary release %s: %s", CanaryRelease(service), why))
	}
	return nil
}

// RemoveCanary uninstalls the canary release, one already gone is fine,
// and lifts the hold DeployCanary put on the stable's scale.
func (d *Deployer) RemoveCanary(ctx context.Context, service string, timeout time.Duration, lock *kube.Lock) error {
	rel, err := d.releases(nil, lock)
	if err != nil {
		return err
	}
	if err := rel.uninstall(CanaryRelease(service), helmkube.HookOnlyStrategy, timeout); err != nil {
		return fmt.Errorf("removing the canary release %s: %w", CanaryRelease(service), err)
	}
	if err := lock.Check(); err != nil {
		return err
	}
	return d.freeStable(ctx, service)
}

// stableValues are the stable release's values but its image, as an
// overlay: the canary runs, and the promotion keeps, what the stable was
// deployed with (values given to deploy with -f or --set included), only
// the image changes.
func (r *releases) stableValues(service string) ([]map[string]any, error) {
	last, err := r.last(service)
	if err != nil || last == nil {
		return nil, err
	}
	values := maps.Clone(last.Config)
	delete(values, "image")
	delete(values, "track")
	return []map[string]any{values}, nil
}

// StableRelease reads the stable release's image and revision; a service
// never deployed is a *NotDeployedError.
func (d *Deployer) StableRelease(_ context.Context, service string) (imageref.Ref, int, error) {
	rel, err := d.releases(nil, nil)
	if err != nil {
		return imageref.Ref{}, 0, err
	}
	last, err := rel.last(service)
	if err != nil {
		return imageref.Ref{}, 0, err
	}
	if last == nil {
		return imageref.Ref{}, 0, &NotDeployedError{Service: service}
	}
	return render.ImageFromValues(last.Config), last.Version, nil
}

// PromoteStable upgrades the stable release to img, as a deploy of that one
// service would (a normal revision, kstatus wait, rolled back if it does not
// become ready), under the lock the caller holds.
func (d *Deployer) PromoteStable(ctx context.Context, service string, img imageref.Ref, timeout time.Duration, lock *kube.Lock) (Result, error) {
	// No permission review: installing the canary's release took the same
	// rights on the same kinds as this upgrade, so only what the cluster
	// serves is needed.
	caps, err := d.capabilities(ctx)
	if err != nil {
		return Result{}, err
	}
	rel, err := d.releases(nil, nil)
	if err != nil {
		return Result{}, err
	}
	stable, err := rel.stableValues(service)
	if err != nil {
		return Result{}, err
	}
	opts := Options{Services: []string{service}, Images: map[string]imageref.Ref{service: img}, Wait: true, Atomic: true,
		Timeout: timeout, Lock: LockOptions{Holder: kube.Holder{Nonce: lock.Nonce()}}, Values: stable,
		Description: "msctl canary promote " + img.String()}.withDefaults()
	r := d.deployService(ctx, service, opts, caps, lock)
	r.Service = service
	if r.State.Failed() {
		return r, &Failed{Results: []Result{r}}
	}
	return r, nil
}
