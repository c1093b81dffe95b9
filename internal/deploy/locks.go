package deploy

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/kube"
)

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
func (d *Deployer) lockAll(ctx context.Context, services []string, opts Options) (*locks, error) {
	l := &locks{d: d, held: map[string]*kube.Lock{}}
	// Sorted and without repeats: a name given twice would take its own
	// Lease twice and leak the first renewal.
	for _, name := range slices.Compact(slices.Sorted(slices.Values(services))) {
		lock, err := kube.AcquireLock(ctx, d.Cluster.Clientset, d.Project.Namespace, "msctl-"+name, opts.Holder, opts.LockTTL)
		if err != nil {
			l.releaseAll(ctx)
			return nil, err
		}
		l.held[name] = lock
	}
	return l, nil
}

// release frees one service's Lease once its work is done, so another run
// can take it while this one goes on with other services.
func (l *locks) release(ctx context.Context, name string) {
	l.mu.Lock()
	lock := l.held[name]
	delete(l.held, name)
	l.mu.Unlock()
	if lock == nil {
		return
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	// Best effort: an unreleased Lease lapses after its TTL.
	if err := lock.Release(rctx); err != nil {
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
