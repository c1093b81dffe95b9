package deploykube

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/kube"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func lockOpts(name string, ttl time.Duration) deploy.LockOptions {
	o := holder(name)
	o.TTL = ttl
	return o
}

// A run whose Lease another run takes over learns it within a renewal, and
// every later check fails, so it writes nothing more.
func TestLockReportsLoss(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	ttl := 2 * time.Second
	first, err := d.Lock(ctx, "user", lockOpts("first", ttl))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release(ctx)
	if _, err := d.Lock(ctx, "user", lockOpts("second", ttl)); !errors.As(err, new(*kube.LockHeldError)) {
		t.Fatalf("second run without --steal-lock: %v", err)
	}
	steal := lockOpts("second", ttl)
	steal.Steal = true
	second, err := d.Lock(ctx, "user", steal)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Release(ctx)
	select {
	case <-first.Lost():
	case <-time.After(ttl):
		t.Fatal("the first run never noticed its lock was taken")
	}
	var lost *kube.LockLostError
	if err := first.Check(); !errors.As(err, &lost) || !strings.Contains(err.Error(), `taken over by "second (`) {
		t.Errorf("first.Check: %v", err)
	}
	if err := second.Check(); err != nil {
		t.Errorf("second.Check: %v", err)
	}
	// The first run's release leaves the second's Lease alone.
	if err := first.Release(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := d.Cluster.Clientset.CoordinationV1().Leases(d.Project.Namespace).Get(ctx, deploy.LeaseName("user"), metav1.GetOptions{})
	if err != nil || !strings.HasPrefix(ptr.Deref(l.Spec.HolderIdentity, ""), "second (") {
		t.Errorf("after the first run's release: %v %v", l.Spec.HolderIdentity, err)
	}
}

// A deploy that loses its lock while Helm waits stops at once, and does not
// roll back what is now the other run's release.
func TestDeployStopsWhenItsLockIsLost(t *testing.T) {
	d := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	done := make(chan error, 1)
	var res []deploy.Result
	go func() {
		var err error
		res, err = d.Deploy(ctx, deploy.Options{Services: []string{"user"}, ImageTag: "v2", Wait: true, Atomic: true,
			Timeout: time.Minute, Lock: lockOpts("slow", 2*time.Second),
			Values: []map[string]any{{"podLabels": map[string]any{"msctl.dev/fail-readiness": "true"}}}})
		done <- err
	}()
	waitPending(t, d, "user")
	steal := lockOpts("thief", 2*time.Second)
	steal.Steal = true
	thief, err := d.Lock(ctx, "user", steal)
	if err != nil {
		t.Fatal(err)
	}
	defer thief.Release(ctx)
	stolen := time.Now()
	var derr error
	select {
	case derr = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the deploy went on for 10s after losing its lock")
	}
	t.Logf("stopped %s after the theft: %v", time.Since(stolen).Round(time.Millisecond), derr)
	if len(res) != 1 || res[0].State != deploy.StateFailed || !strings.Contains(res[0].Message, "lost the lock") {
		t.Fatalf("result %+v, err %v", res, derr)
	}
	hist, err := d.History(ctx, "user")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hist {
		if strings.Contains(h.Description, "Rollback") {
			t.Errorf("a run that lost its lock rolled back: %+v", hist)
		}
	}
}

// A runner whose clock is far ahead sees every Lease as lapsed by the time
// its holder wrote; it must watch, see the renewals, and stay out.
func TestClockAheadDoesNotTakeALiveLock(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	live, err := d.Lock(ctx, "user", lockOpts("live", 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Release(ctx)
	skewed := *d
	skewed.Now = func() time.Time { return time.Now().Add(time.Hour) }
	start := time.Now()
	_, err = skewed.Lock(ctx, "user", lockOpts("skewed", 2*time.Second))
	if !errors.As(err, new(*kube.LockHeldError)) {
		t.Fatalf("a clock an hour ahead: %v", err)
	}
	t.Logf("refused after watching for %s", time.Since(start).Round(time.Millisecond))
	if err := live.Check(); err != nil {
		t.Errorf("the live holder lost its lock: %v", err)
	}
}

// A Lease whose holder stopped renewing is taken over once this process
// has seen it unchanged for its whole duration.
func TestLapsedLockIsTakenAfterWatching(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	// The Lease of a run on another machine that died 3s ago.
	renewed := metav1.NewMicroTime(time.Now().Add(-3 * time.Second))
	_, err := d.Cluster.Clientset.CoordinationV1().Leases(d.Project.Namespace).Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: deploy.LeaseName("user"), Annotations: map[string]string{
			"msctl.dev/holder-host": "another-machine", "msctl.dev/holder-pid": "1", "msctl.dev/holder-nonce": "dead0000"}},
		Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To("dead-run (another-machine pid 1, dead0000)"),
			LeaseDurationSeconds: ptr.To(int32(2)), AcquireTime: &renewed, RenewTime: &renewed},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	next, err := d.Lock(ctx, "user", lockOpts("next", 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer next.Release(ctx)
	if waited := time.Since(start); waited < 2*time.Second {
		t.Errorf("took a lapsed-looking Lease after %s, before watching it for its 2s", waited)
	}
	if nonce, dead := next.TakenFrom(); nonce != "dead0000" || !dead {
		t.Errorf("TakenFrom = %q, %v", nonce, dead)
	}
}

// Destroy deletes a Lease only while it is the one it holds.
func TestDeleteLeavesATakenLease(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	first, err := d.Lock(ctx, "user", lockOpts("first", 2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	steal := lockOpts("second", 2*time.Second)
	steal.Steal = true
	second, err := d.Lock(ctx, "user", steal)
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := first.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.Check(); err != nil {
		t.Fatalf("the second run lost its lock to the first's delete: %v", err)
	}
	if err := second.Delete(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Cluster.Clientset.CoordinationV1().Leases(d.Project.Namespace).Get(ctx, deploy.LeaseName("user"), metav1.GetOptions{}); err == nil {
		t.Error("the holder's own delete left the Lease")
	}
}
