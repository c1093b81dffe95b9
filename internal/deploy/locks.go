package deploy

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
)

// LeaseName is the coordination.k8s.io Lease that locks a service: deploy,
// rollback, destroy and canaries of one service exclude each other by it.
func LeaseName(service string) string { return "msctl-" + service }

// Lock takes one service's Lease, as every writer of a service must.
func (d *Deployer) Lock(ctx context.Context, service string, opts LockOptions) (*kube.Lock, error) {
	return kube.AcquireLock(ctx, d.Cluster.Clientset, kube.LockOptions{
		Namespace: d.Project.Namespace, Name: LeaseName(service), Holder: opts.Holder, TTL: opts.TTL, Steal: opts.Steal,
		Labels: map[string]string{render.ManagedByLabel: render.ManagedBy}, Log: d.Log, Now: d.Now,
	})
}

// locks are the Leases of every service a run writes, taken before it
// writes any of them.
type locks struct {
	d    *Deployer
	mu   sync.Mutex
	held map[string]*kube.Lock
}

// lockAll takes the services' Leases one by one in name order and, if
// another run holds one, releases those it took and returns the
// *kube.LockHeldError. Taking them all first means a run that cannot
// finish fails before its first write, not after a level is deployed; the
// fixed order means that of two runs over overlapping services exactly
// one goes ahead, never both stopping on each other's half.
func (d *Deployer) lockAll(ctx context.Context, services []string, opts LockOptions) (*locks, error) {
	l := &locks{d: d, held: map[string]*kube.Lock{}}
	// Sorted and without repeats: a name given twice would take its own
	// Lease twice.
	for _, name := range slices.Compact(slices.Sorted(slices.Values(services))) {
		lock, err := d.Lock(ctx, name, opts)
		if err != nil {
			l.releaseAll(ctx)
			return nil, err
		}
		l.held[name] = lock
	}
	return l, nil
}

func (l *locks) lock(name string) *kube.Lock {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.held[name]
}

// check fails when any held lock is lost: writes that concern every
// service (the project's objects) need them all.
func (l *locks) check() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, lock := range l.held {
		if err := lock.Check(); err != nil {
			return err
		}
	}
	return nil
}

// release frees one service's Lease once its work is done, so another run
// can take it while this one goes on with other services.
func (l *locks) release(ctx context.Context, name string) { l.finish(ctx, name, false) }

// remove deletes one service's Lease, if it is still the one this run
// holds: destroy leaves nothing of a service behind.
func (l *locks) remove(ctx context.Context, name string) { l.finish(ctx, name, true) }

func (l *locks) finish(ctx context.Context, name string, remove bool) {
	l.mu.Lock()
	lock := l.held[name]
	delete(l.held, name)
	l.mu.Unlock()
	if lock == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	finish := lock.Release
	if remove {
		finish = lock.Delete
	}
	// Best effort: an unreleased Lease lapses after its TTL.
	if err := finish(rctx); err != nil {
		l.d.Log.Warn("releasing the lock", "service", name, "error", err)
	}
}

// releaseAll frees what is still held, such as the Leases of services a
// failed level kept the run from reaching.
func (l *locks) releaseAll(ctx context.Context) {
	l.mu.Lock()
	names := make([]string, 0, len(l.held))
	for name := range l.held {
		names = append(names, name)
	}
	l.mu.Unlock()
	for _, name := range names {
		l.release(ctx, name)
	}
}
