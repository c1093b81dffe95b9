package deploy

import (
	"context"
	"errors"
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
		return fmt.Sprintf("service %q has no earlier revision that ran well: nothing to roll back to", e.Service)
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
	// A rollback under a canary would change the stable it is compared
	// with and render its routes away.
	if err := d.refuseDuringCanary(ctx, []string{service}); err != nil {
		return Result{}, err
	}

	rel, err := d.releases(nil, lock)
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
	last := hist[len(hist)-1]
	if last.Info.Status.IsPending() {
		// Nobody else's operation is undone from under it; one of msctl's
		// own that is abandoned is for deploy to mend.
		nonce, gone := lock.TakenFrom()
		if busy := stillBusy(service, last, lock.Nonce(), nonce, gone, d.Now()); busy != nil {
			return Result{}, busy
		}
	}
	revision := opts.Revision
	if revision == 0 {
		// The newest revision that ran well before the current one: after
		// a failed upgrade and its automatic rollback, the one before the
		// current is the failed one.
		good, err := rel.lastGood(service, last.Version)
		if err != nil {
			return Result{}, err
		}
		if good == 0 {
			return Result{}, &NoSuchRevisionError{Service: service}
		}
		revision = good
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
	rbStart := d.Now()
	if err := rel.rollback(service, revision, opts.Timeout); err != nil {
		why := d.whyNotReady(context.WithoutCancel(ctx), service, err)
		r := Result{Service: service, State: StateFailed, Message: why}
		if errors.Is(err, context.DeadlineExceeded) || d.Now().Sub(rbStart) >= opts.Timeout {
			r.TimedOut = true
			r.Message = fmt.Sprintf("not ready within %s: %s", opts.Timeout, why)
		}
		return r, &Failed{Results: []Result{r}, Op: "rollback"}
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
	after, err := rel.last(service)
	if err != nil {
		return Result{}, err
	}
	return Result{Service: service, State: StateDeployed, Revision: after.Version, Image: image.String(),
		Message: fmt.Sprintf("rolled back to revision %d", revision), Duration: d.Now().Sub(start)}, nil
}

// releaseRecord is a revision's values, as Helm stored them.
type releaseRecord struct{ values map[string]any }
