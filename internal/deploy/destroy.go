package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/msctl/msctl/internal/render"
	helmkube "helm.sh/helm/v4/pkg/kube"
)

// DestroyOptions tune a destroy.
type DestroyOptions struct {
	// Services to remove.
	Services []string
	// Project removes the project-wide objects too (gateway, mesh
	// policies, dashboard); the namespace stays.
	Project bool
	// Timeout bounds the wait for each service's objects to go.
	Timeout time.Duration
	Lock    LockOptions
}

// Destroy uninstalls the services' releases and deletes the Istio objects
// msctl applied for them and their Leases.
func (d *Deployer) Destroy(ctx context.Context, opts DestroyOptions) ([]Result, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	opts.Services = unique(opts.Services)
	// All locks first: a destroy another run would collide with removes
	// nothing rather than half of the services.
	held, err := d.lockAll(ctx, opts.Services, opts.Lock)
	if err != nil {
		return nil, err
	}
	defer held.releaseAll(ctx)
	// Destroying under a canary would leave its release and state behind.
	if err := d.refuseDuringCanary(ctx, opts.Services); err != nil {
		return nil, err
	}
	var out []Result
	for _, name := range opts.Services {
		rel, err := d.releases(nil, held.lock(name))
		if err != nil {
			return out, err
		}
		if err := held.lock(name).Check(); err != nil {
			return out, err
		}
		err = rel.uninstall(name, helmkube.StatusWatcherStrategy, opts.Timeout)
		if err == nil {
			err = d.deleteIstio(ctx, name, held.lock(name).Check)
		}
		if err != nil {
			return out, fmt.Errorf("destroying %s: %w", name, err)
		}
		// The Lease goes too, if no other run has taken it meanwhile.
		held.remove(ctx, name)
		out = append(out, Result{Service: name, State: StateDestroyed})
	}
	if opts.Project {
		objs, err := render.ProjectObjects(d.Project)
		if err != nil {
			return out, err
		}
		for _, o := range objs {
			if o.GetKind() == "Namespace" {
				continue
			}
			if err := d.applier.Delete(ctx, o.Unstructured); err != nil {
				return out, err
			}
		}
	}
	return out, nil
}

// deleteIstio deletes the Istio objects msctl applied for a service, found
// by their labels, so one an older render produced goes too.
func (d *Deployer) deleteIstio(ctx context.Context, name string, check func() error) error {
	for _, gvk := range render.ServiceIstioKinds() {
		live, err := d.applier.List(ctx, gvk, d.Project.Namespace, d.istioSelector(name))
		if err != nil {
			return err
		}
		for _, l := range live {
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
