package deploy

import (
	"context"
	"fmt"
	"time"

	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/render"
)

// NoSuchRevisionError is a rollback target that the history doesn't have.
type NoSuchRevisionError struct {
	Service  string
	Revision int
}

func (e *NoSuchRevisionError) Error() string {
	if e.Revision == 0 {
		return fmt.Sprintf("service %q has only one revision: nothing to roll back to", e.Service)
	}
	return fmt.Sprintf("service %q has no revision %d (see msctl history %s)", e.Service, e.Revision, e.Service)
}

// ErrorKind marks a missing revision as bad input.
func (e *NoSuchRevisionError) ErrorKind() errkind.Kind { return errkind.BadInput }

// RollbackOptions tune a rollback.
type RollbackOptions struct {
	// Revision to return to; 0 means the one before the current.
	Revision int
	// Timeout bounds the wait until the revision is ready.
	Timeout time.Duration
	Lock    LockOptions
}

// Rollback returns a service to a revision, waits for it, and re-applies
// the Istio objects for that revision, keeping the live canary weight.
func (d *Deployer) Rollback(ctx context.Context, service string, opts RollbackOptions) (Result, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 5 * time.Minute
	}
	start := d.Now()
	lock, err := d.Lock(ctx, service, opts.Lock)
	if err != nil {
		return Result{}, err
	}
	defer func() { _ = lock.Release(context.WithoutCancel(ctx)) }() // best effort: an unreleased lease lapses
	ctx, cancel := lock.Bind(ctx)
	defer cancel()

	rel, err := d.releases(nil)
	if err != nil {
		return Result{}, err
	}
	hist, err := rel.history(service)
	if err != nil {
		return Result{}, err
	}
	if len(hist) == 0 {
		return Result{}, &NotDeployedError{Service: service}
	}
	revision := opts.Revision
	if revision == 0 {
		current := hist[len(hist)-1].Version
		if current == 1 {
			return Result{}, &NoSuchRevisionError{Service: service}
		}
		revision = current - 1
	}
	var target *releaseRecord
	for _, h := range hist {
		if h.Version == revision {
			target = &releaseRecord{h.Config}
		}
	}
	if target == nil {
		return Result{}, &NoSuchRevisionError{Service: service, Revision: revision}
	}
	if err := lock.Check(); err != nil {
		return Result{}, err
	}
	image := render.ImageFromValues(target.values)
	if err := rel.rollback(service, revision, opts.Timeout); err != nil {
		return Result{Service: service, State: StateFailed, Message: d.whyNotReady(ctx, service, err)}, err
	}
	weight, err := d.CanaryWeight(ctx, service)
	if err != nil {
		return Result{}, err
	}
	res, err := render.Render(d.Project, render.Options{
		Services: []string{service}, ImageTag: image.Tag, CanaryWeights: map[string]int{service: weight},
	})
	if err != nil {
		return Result{}, err
	}
	if err := d.applyIstio(ctx, service, res.Istio(service), lock.Check); err != nil {
		return Result{}, err
	}
	last, err := rel.last(service)
	if err != nil {
		return Result{}, err
	}
	return Result{Service: service, State: StateDeployed, Revision: last.Version, Image: image.String(),
		Message: fmt.Sprintf("rolled back to revision %d", revision), Duration: d.Now().Sub(start)}, nil
}

// releaseRecord is a revision's values, as Helm stored them.
type releaseRecord struct{ values map[string]any }
