package kube

import (
	"context"
	"fmt"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// LockHeldError says another run holds a service's lock. The command line
// maps it to exit code 7.
type LockHeldError struct {
	Name    string
	Holder  string
	Since   time.Time
	Expires time.Time
}

func (e *LockHeldError) Error() string {
	return fmt.Sprintf("%s is locked by %q since %s (the lock lapses at %s unless its holder renews it)",
		e.Name, e.Holder, e.Since.UTC().Format(time.RFC3339), e.Expires.UTC().Format(time.RFC3339))
}

// Lock is a held coordination.k8s.io Lease: one writer per service. It is
// renewed in the background until Release, so a crashed holder's lock
// lapses after its TTL and the next run can take it over.
type Lock struct {
	cs     kubernetes.Interface
	ns     string
	name   string
	holder string
	stop   chan struct{}
	done   chan struct{}
}

// AcquireLock takes the Lease ns/name for holder, or fails at once with
// *LockHeldError when someone else holds a live one. A lapsed Lease, or one
// held by the same identity (a rerun of the same CI job), is taken over.
func AcquireLock(ctx context.Context, cs kubernetes.Interface, ns, name, holder string, ttl time.Duration) (*Lock, error) {
	leases := cs.CoordinationV1().Leases(ns)
	now := metav1.NewMicroTime(time.Now())
	spec := coordinationv1.LeaseSpec{
		HolderIdentity:       ptr.To(holder),
		LeaseDurationSeconds: ptr.To(int32(ttl.Seconds())),
		AcquireTime:          &now,
		RenewTime:            &now,
	}
	for attempt := 0; attempt < 3; attempt++ {
		cur, err := leases.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{"app.kubernetes.io/managed-by": "msctl"}},
				Spec:       spec,
			}, metav1.CreateOptions{})
			if apierrors.IsAlreadyExists(err) {
				continue // someone created it first: look again
			}
			if err != nil {
				return nil, fmt.Errorf("lock %s: %w", name, err)
			}
			return startLock(cs, ns, name, holder, ttl), nil
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		if held := heldByOther(cur, holder, time.Now()); held != nil {
			held.Name = name
			return nil, held
		}
		cur.Spec = spec
		// The update carries cur's resourceVersion: if another run took the
		// lease since we read it, this fails with a conflict and we look again.
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("lock %s: %w", name, err)
		}
		return startLock(cs, ns, name, holder, ttl), nil
	}
	return nil, fmt.Errorf("lock %s: contended; try again", name)
}

// heldByOther returns who holds a live lease other than holder, or nil.
func heldByOther(l *coordinationv1.Lease, holder string, now time.Time) *LockHeldError {
	h := ptr.Deref(l.Spec.HolderIdentity, "")
	if h == "" || h == holder || l.Spec.RenewTime == nil {
		return nil
	}
	expires := l.Spec.RenewTime.Add(time.Duration(ptr.Deref(l.Spec.LeaseDurationSeconds, 0)) * time.Second)
	if now.After(expires) {
		return nil // lapsed: its holder stopped renewing
	}
	since := l.Spec.RenewTime.Time
	if l.Spec.AcquireTime != nil {
		since = l.Spec.AcquireTime.Time
	}
	return &LockHeldError{Holder: h, Since: since, Expires: expires}
}

func startLock(cs kubernetes.Interface, ns, name, holder string, ttl time.Duration) *Lock {
	l := &Lock{cs: cs, ns: ns, name: name, holder: holder, stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew(ttl / 3)
	return l
}

func (l *Lock) renew(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), every)
			cur, err := l.cs.CoordinationV1().Leases(l.ns).Get(ctx, l.name, metav1.GetOptions{})
			if err == nil && ptr.Deref(cur.Spec.HolderIdentity, "") == l.holder {
				cur.Spec.RenewTime = ptr.To(metav1.NewMicroTime(time.Now()))
				_, _ = l.cs.CoordinationV1().Leases(l.ns).Update(ctx, cur, metav1.UpdateOptions{})
			}
			cancel()
		}
	}
}

// Release stops renewing and frees the lease if this holder still has it.
func (l *Lock) Release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	leases := l.cs.CoordinationV1().Leases(l.ns)
	cur, err := leases.Get(ctx, l.name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if ptr.Deref(cur.Spec.HolderIdentity, "") != l.holder {
		return nil
	}
	cur.Spec.HolderIdentity = nil
	cur.Spec.AcquireTime = nil
	cur.Spec.RenewTime = nil
	_, err = leases.Update(ctx, cur, metav1.UpdateOptions{})
	if apierrors.IsConflict(err) {
		return nil // changed hands meanwhile: no longer ours to free
	}
	return err
}
