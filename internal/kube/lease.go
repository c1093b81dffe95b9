package kube

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/errkind"
	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// DefaultLockTTL is how long a Lease outlives a holder that stopped
// renewing. Long enough to ride out an API server restart or a slow
// network; a crashed run on the same machine is taken over at once anyway.
const DefaultLockTTL = time.Minute

// LockHeldError says another run holds a service's lock.
type LockHeldError struct {
	Name   string
	Holder string
	Since  time.Time
	TTL    time.Duration
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("%s is locked by %q since %s; the lock lapses %s after its holder stops renewing (--steal-lock takes it over)",
		e.Name, e.Holder, e.Since.UTC().Format(time.RFC3339), e.TTL)
}

// ErrorKind marks the error for the exit code.
func (e *LockHeldError) ErrorKind() errkind.Kind { return errkind.LockHeld }

// LockLostError says a run no longer holds a Lease it took: another run took
// it over, or renewals failed for too long. The run must stop writing.
type LockLostError struct {
	Name   string
	Reason string
}

func (e *LockLostError) Error() string {
	return fmt.Sprintf("lost the lock %s (%s): stopped before writing more", e.Name, e.Reason)
}

// LockOptions say which Lease to take and how.
type LockOptions struct {
	Namespace string
	Name      string
	Holder    Holder
	// TTL is how long the Lease outlives this run once it stops renewing.
	TTL time.Duration
	// Steal takes over a live Lease from its holder, on purpose.
	Steal bool
	// Labels go on a Lease this run creates.
	Labels map[string]string
	// Log gets takeovers (always) and failed renewals (debug).
	Log *slog.Logger
	// Now is the clock; nil means time.Now. Lapse is judged only on this
	// clock, never against the time another machine wrote.
	Now func() time.Time
}

// Lock is a held coordination.k8s.io Lease: one writer per service. It is
// renewed in the background; Lost reports when it is no longer held, and
// Check tells a writer so before each write.
type Lock struct {
	cs       kubernetes.Interface
	opts     LockOptions
	identity string

	// takenFrom is the nonce of the holder this run took the Lease over
	// from, and gone whether that holder was known to have stopped.
	takenFrom string
	gone      bool

	mu        sync.Mutex
	lease     *coordinationv1.Lease // as last written by this run
	lastRenew time.Time
	lostErr   error

	lost       chan struct{}
	stop       chan struct{}
	done       chan struct{}
	stopOnce   sync.Once
	loseOnce   sync.Once
	finishOnce sync.Once
}

// AcquireLock takes the Lease, or fails with *LockHeldError when another run
// holds a live one. A Lease is taken over when it is free, when opts.Steal
// says so, when its holder is a process of this machine that no longer runs,
// or when this process has watched it go unrenewed for its whole duration:
// a Lease that merely looks lapsed by the time its holder wrote is watched,
// not taken, so a clock running ahead never takes a live lock.
func AcquireLock(ctx context.Context, cs kubernetes.Interface, opts LockOptions) (*Lock, error) {
	if opts.TTL <= 0 {
		opts.TTL = DefaultLockTTL
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	l := &Lock{cs: cs, opts: opts, identity: opts.Holder.Identity(),
		lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	leases := cs.CoordinationV1().Leases(opts.Namespace)
	var watched *observation
	conflicts := 0
	for {
		if conflicts > 20 {
			return nil, fmt.Errorf("lock %s: contended; try again", opts.Name)
		}
		cur, err := leases.Get(ctx, opts.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			created, err := leases.Create(ctx, l.claim(&coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: opts.Name, Namespace: opts.Namespace, Labels: opts.Labels},
			}), metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				conflicts++
				continue // someone created it first: look again
			}
			if err != nil {
				return nil, fmt.Errorf("lock %s: %w", opts.Name, err)
			}
			return l.start(created), nil
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", opts.Name, err)
		}
		now := opts.Now()
		v, why, gone := judge(cur, l.identity, opts, watched, now)
		switch v {
		case verdictHeld:
			return nil, heldError(cur, opts)
		case verdictWatch:
			if watched == nil {
				opts.Log.Info("the lock looks lapsed; watching it before taking it over",
					"lock", opts.Name, "holder", holderOf(cur), "for", leaseDuration(cur, opts.TTL))
				watched = &observation{resourceVersion: cur.ResourceVersion, at: now}
			}
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(pollInterval(leaseDuration(cur, opts.TTL))):
			}
			continue
		}
		if why != "" {
			opts.Log.Warn("taking over the lock", "lock", opts.Name, "from", holderOf(cur), "because", why)
			l.takenFrom, l.gone = cur.Annotations[annotationNonce], gone
		}
		// The update carries cur's resourceVersion: if another run took the
		// lease since we read it, this fails with a conflict and we look again.
		updated, err := leases.Update(ctx, l.claim(cur.DeepCopy()), metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			conflicts++
			watched = nil
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", opts.Name, err)
		}
		return l.start(updated), nil
	}
}

// observation is what this process saw of a Lease, and when on its own clock.
type observation struct {
	resourceVersion string
	at              time.Time
}

type verdict int

const (
	verdictTake verdict = iota
	verdictHeld
	verdictWatch
)

// judge decides what to do with an existing Lease; for a takeover it says
// why, and whether the holder is known to have stopped.
func judge(l *coordinationv1.Lease, identity string, opts LockOptions, watched *observation, now time.Time) (v verdict, why string, gone bool) {
	holder := holderOf(l)
	switch {
	case holder == "" || holder == identity:
		return verdictTake, "", false
	case opts.Steal:
		return verdictTake, "--steal-lock", false
	case holderGone(l.Annotations, opts.Holder.Host, opts.Holder.Scope):
		return verdictTake, "its holder, a process of this machine, no longer runs", true
	}
	dur := leaseDuration(l, opts.TTL)
	// By the holder's own clock the Lease is live: believe it, unless its
	// renew time is further ahead of this clock than a whole duration,
	// which only a clock far ahead writes. If this clock is behind, a dead
	// holder's Lease is taken a little later, never a live one sooner.
	if r := l.Spec.RenewTime; r != nil && r.Add(dur).After(now) && !r.After(now.Add(dur)) {
		return verdictHeld, "", false
	}
	switch {
	case watched == nil:
		return verdictWatch, "", false
	case watched.resourceVersion != l.ResourceVersion:
		// Renewed while we watched: its holder is alive, whatever the
		// clocks say.
		return verdictHeld, "", false
	case now.Sub(watched.at) >= dur:
		return verdictTake, fmt.Sprintf("not renewed for %s", now.Sub(watched.at).Round(time.Second)), true
	}
	return verdictWatch, "", false
}

func holderOf(l *coordinationv1.Lease) string { return ptr.Deref(l.Spec.HolderIdentity, "") }

func leaseDuration(l *coordinationv1.Lease, fallback time.Duration) time.Duration {
	if s := ptr.Deref(l.Spec.LeaseDurationSeconds, 0); s > 0 {
		return time.Duration(s) * time.Second
	}
	return fallback
}

func pollInterval(d time.Duration) time.Duration {
	return min(max(d/10, 100*time.Millisecond), 2*time.Second)
}

func heldError(l *coordinationv1.Lease, opts LockOptions) *LockHeldError {
	e := &LockHeldError{Name: opts.Name, Holder: holderOf(l), TTL: leaseDuration(l, opts.TTL)}
	switch {
	case l.Spec.AcquireTime != nil:
		e.Since = l.Spec.AcquireTime.Time
	case l.Spec.RenewTime != nil:
		e.Since = l.Spec.RenewTime.Time
	}
	return e
}

// claim writes this run into a Lease object.
func (l *Lock) claim(lease *coordinationv1.Lease) *coordinationv1.Lease {
	now := metav1.NewMicroTime(l.opts.Now())
	lease.Spec = coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(l.identity),
		LeaseDurationSeconds: ptr.To(int32(max(1, l.opts.TTL/time.Second))),
		AcquireTime:          &now,
		RenewTime:            &now,
	}
	if lease.Annotations == nil {
		lease.Annotations = map[string]string{}
	}
	maps.Copy(lease.Annotations, l.opts.Holder.annotations())
	return lease
}

func (l *Lock) start(lease *coordinationv1.Lease) *Lock {
	l.lease = lease
	l.lastRenew = l.opts.Now()
	go l.renew()
	return l
}

// Holder is the identity this lock is held under.
func (l *Lock) Holder() string { return l.identity }

// Nonce is the random part of the holder's identity, which release records
// carry to say which run wrote them.
func (l *Lock) Nonce() string { return l.opts.Holder.Nonce }

// TakenFrom is the nonce of the holder this run took the Lease over from
// ("" if it was free), and whether that holder was known to have stopped:
// a process of this machine that no longer runs, or a Lease unrenewed for
// its whole duration.
func (l *Lock) TakenFrom() (nonce string, gone bool) { return l.takenFrom, l.gone }

// Lost is closed when the lock is no longer held.
func (l *Lock) Lost() <-chan struct{} { return l.lost }

// Check returns a *LockLostError when the lock may no longer be held:
// another run took it, or this run has not renewed it for three quarters of
// its TTL (by the monotonic clock or the wall clock, so a machine that slept
// through its TTL knows on waking). Call it before every write.
func (l *Lock) Check() error {
	l.mu.Lock()
	err, stale := l.lostErr, l.staleLocked()
	l.mu.Unlock()
	if err != nil {
		return err
	}
	if stale == "" {
		return nil
	}
	// Stale by this clock, which may merely have jumped: one renewal now
	// settles it.
	ctx, cancel := context.WithTimeout(context.Background(), min(2*time.Second, l.opts.TTL/4))
	err = l.renewOnce(ctx)
	cancel()
	var lost *LockLostError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &lost):
		l.lose(lost.Reason, true)
	default:
		l.lose(stale+": "+err.Error(), true)
	}
	return l.Check()
}

// Bind returns a context that is cancelled, with the *LockLostError as its
// cause, when the lock is lost; long operations under the lock take it.
func (l *Lock) Bind(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	go func() {
		select {
		case <-l.lost:
			cancel(l.Check())
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(context.Canceled) }
}

// staleLocked says why the last renewal is too old, or "". The wall clock
// counts too: the monotonic one stops while a machine is suspended.
func (l *Lock) staleLocked() string {
	limit := l.opts.TTL * 3 / 4
	now := l.opts.Now()
	if since := max(now.Sub(l.lastRenew), now.Round(0).Sub(l.lastRenew.Round(0))); since >= limit {
		return fmt.Sprintf("not renewed for %s of its %s TTL", since.Round(time.Second), l.opts.TTL)
	}
	return ""
}

// lose marks the lock as no longer held; loud says it was not this run's
// choice.
func (l *Lock) lose(reason string, loud bool) {
	l.loseOnce.Do(func() {
		l.mu.Lock()
		l.lostErr = &LockLostError{Name: l.opts.Name, Reason: reason}
		l.mu.Unlock()
		if loud {
			l.opts.Log.Error("lost the lock", "lock", l.opts.Name, "reason", reason)
		}
		close(l.lost)
	})
}

func (l *Lock) renew() {
	defer close(l.done)
	every := max(l.opts.TTL/4, 50*time.Millisecond)
	wait := every
	for {
		t := time.NewTimer(wait)
		select {
		case <-l.stop:
			t.Stop()
			return
		case <-l.lost:
			t.Stop()
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), every)
		err := l.renewOnce(ctx)
		cancel()
		var lost *LockLostError
		switch {
		case errors.As(err, &lost):
			l.lose(lost.Reason, true)
			return
		case err != nil:
			l.opts.Log.Debug("renewing the lock", "lock", l.opts.Name, "error", err)
			if err := l.Check(); err != nil {
				return
			}
			// Try again soon: the loss must be noticed close to 3/4 of
			// the TTL, well before another run may take the Lease.
			wait = max(every/4, 10*time.Millisecond)
		default:
			wait = every
		}
	}
}

// renewOnce writes a new renew time by compare-and-swap on what this run
// last wrote; a Lease changed by someone else is re-read, and is lost if it
// names another holder.
func (l *Lock) renewOnce(ctx context.Context) error {
	leases := l.cs.CoordinationV1().Leases(l.opts.Namespace)
	l.mu.Lock()
	next := l.lease.DeepCopy()
	l.mu.Unlock()
	for range 3 {
		now := l.opts.Now()
		next.Spec.RenewTime = ptr.To(metav1.NewMicroTime(now))
		updated, err := leases.Update(ctx, next, metav1.UpdateOptions{})
		switch {
		case err == nil:
			l.mu.Lock()
			l.lease, l.lastRenew = updated, now
			l.mu.Unlock()
			return nil
		case apierrors.IsNotFound(err):
			return &LockLostError{Name: l.opts.Name, Reason: "the Lease was deleted"}
		case !apierrors.IsConflict(err):
			return err
		}
		cur, err := leases.Get(ctx, l.opts.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return &LockLostError{Name: l.opts.Name, Reason: "the Lease was deleted"}
		}
		if err != nil {
			return err
		}
		if h := holderOf(cur); h != l.identity {
			return &LockLostError{Name: l.opts.Name, Reason: fmt.Sprintf("taken over by %q", h)}
		}
		next = cur
	}
	return fmt.Errorf("renewing %s: contended", l.opts.Name)
}

// released is the loss reason of a lock its run let go.
const released = "released"

// halt stops renewing; it reports whether the lock was still held.
func (l *Lock) halt() bool {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
	return l.Check() == nil
}

// Release stops renewing and frees the Lease if this run still holds it.
// Calling it again does nothing.
func (l *Lock) Release(ctx context.Context) error {
	return l.finish(ctx, false)
}

// Delete stops renewing and deletes the Lease, on the condition that it is
// still the version this run wrote: a Lease another run has taken stays.
func (l *Lock) Delete(ctx context.Context) error {
	return l.finish(ctx, true)
}

func (l *Lock) finish(ctx context.Context, remove bool) error {
	var err error // nil for every call but the first
	l.finishOnce.Do(func() { err = l.free(ctx, remove) })
	return err
}

func (l *Lock) free(ctx context.Context, remove bool) error {
	held := l.halt()
	var lost *LockLostError
	if !held && (!errors.As(l.Check(), &lost) || lost.Reason == released || lost.Reason == "the Lease was deleted") {
		return nil
	}
	// Lost by this run's own reckoning (say, after a long suspend): the
	// Lease may still be the one it wrote, and then it is ours to free;
	// the compare-and-swap below leaves one another run took.
	l.lose(released, false)
	leases := l.cs.CoordinationV1().Leases(l.opts.Namespace)
	l.mu.Lock()
	cur := l.lease.DeepCopy()
	l.mu.Unlock()
	for range 3 {
		var err error
		if remove {
			rv := cur.ResourceVersion
			err = leases.Delete(ctx, l.opts.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &rv}})
		} else {
			cur.Spec.HolderIdentity, cur.Spec.AcquireTime, cur.Spec.RenewTime = nil, nil, nil
			_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		}
		switch {
		case err == nil, apierrors.IsNotFound(err):
			return nil
		case !apierrors.IsConflict(err):
			return err
		}
		// Changed since our last write: ours to free only if it names us.
		cur, err = leases.Get(ctx, l.opts.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		if holderOf(cur) != l.identity {
			return nil
		}
	}
	return fmt.Errorf("releasing %s: contended", l.opts.Name)
}
