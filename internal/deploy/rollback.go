package deploy

import (
	"context"
	"fmt"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"time"

	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
	"helm.sh/helm/v4/pkg/action"
	helmkube "helm.sh/helm/v4/pkg/kube"
)

// NoSuchRevisionError is a rollback target that the history doesn't have.
type NoSuchRevisionError struct {
	Service  string
	Revision int
}

func (e *NoSuchRevisionError) Error() string {
	return fmt.Sprintf("service %q has no revision %d (see msctl history %s)", e.Service, e.Revision, e.Service)
}

// Rollback returns a service to a revision (0: the one before the current),
// waits for it, and re-applies the Istio objects for that revision, keeping
// the live canary weight.
func (d *Deployer) Rollback(ctx context.Context, service string, revision int, opts Options) (Result, error) {
	opts = withDefaults(opts)
	start := time.Now()
	lock, err := kube.AcquireLock(ctx, d.Cluster.Clientset, d.Project.Namespace, "msctl-"+service, opts.Holder, opts.LockTTL)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }() // best effort: an unreleased lease lapses

	cfg, err := d.helm(nil)
	if err != nil {
		return Result{}, err
	}
	hist, err := d.History(ctx, service)
	if err != nil {
		return Result{}, err
	}
	current := hist[len(hist)-1].Revision
	if revision == 0 {
		if current == 1 {
			return Result{}, &NoSuchRevisionError{Service: service, Revision: 0}
		}
		revision = current - 1
	}
	rel, err := cfg.Releases.Get(service, revision)
	if err != nil {
		return Result{}, &NoSuchRevisionError{Service: service, Revision: revision}
	}
	target := asRelease(rel)
	if err := helmRollback(cfg, service, revision, opts.Timeout); err != nil {
		return Result{Service: service, State: StateFailed, Message: d.whyNotReady(ctx, service, err)}, err
	}
	weight, err := d.CanaryWeight(ctx, service)
	if err != nil {
		return Result{}, err
	}
	res, err := render.Render(d.Project, render.Options{
		Services: []string{service}, ImageTag: tagOf(target.Config), CanaryWeights: map[string]int{service: weight},
	})
	if err != nil {
		return Result{}, err
	}
	for _, o := range res.Objects {
		if o.Source == render.SourceIstio {
			if _, err := d.applier.Apply(ctx, o.Unstructured, kube.ApplyOptions{}); err != nil {
				return Result{}, err
			}
		}
	}
	last, err := lastRelease(cfg, service)
	if err != nil {
		return Result{}, err
	}
	return Result{Service: service, State: StateDeployed, Revision: last.Version, Image: imageOf(target.Config),
		Message: fmt.Sprintf("rolled back to revision %d", revision), Duration: time.Since(start)}, nil
}

// Destroy uninstalls the services' releases and deletes the Istio objects
// msctl applied for them; with project set it also deletes the project-wide
// objects (gateway, mesh policies, dashboard). The namespace stays.
func (d *Deployer) Destroy(ctx context.Context, services []string, project bool, opts Options) ([]Result, error) {
	opts = withDefaults(opts)
	cfg, err := d.helm(nil)
	if err != nil {
		return nil, err
	}
	// All locks first: a destroy another run would collide with removes
	// nothing rather than half of the services.
	held, err := d.lockAll(ctx, services, opts)
	if err != nil {
		return nil, err
	}
	defer held.releaseAll(ctx)
	var out []Result
	for _, name := range services {
		un := action.NewUninstall(cfg)
		un.IgnoreNotFound = true
		un.WaitStrategy = helmkube.StatusWatcherStrategy
		un.Timeout = opts.Timeout
		_, uerr := un.Run(name)
		res, rerr := render.Render(d.Project, render.Options{Services: []string{name}})
		if rerr == nil {
			for _, o := range res.Objects {
				if o.Source == render.SourceIstio {
					if err := d.applier.Delete(ctx, o.Unstructured); err != nil && rerr == nil {
						rerr = err
					}
				}
			}
		}
		held.release(ctx, name)
		// The lease itself goes too: nothing of the service stays behind.
		_ = d.Cluster.Clientset.CoordinationV1().Leases(d.Project.Namespace).Delete(ctx, "msctl-"+name, deleteOpts)
		if uerr != nil || rerr != nil {
			return out, fmt.Errorf("destroying %s: %w", name, firstErr(uerr, rerr))
		}
		out = append(out, Result{Service: name, State: StateDestroyed})
	}
	if project {
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

func firstErr(errs ...error) error {
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

var deleteOpts = metav1.DeleteOptions{}
