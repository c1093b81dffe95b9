package kube

import (
	"context"
	"errors"
	"maps"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	"k8s.io/utils/ptr"
)

func lease(holder string, renewed time.Time, ttl time.Duration, rv string, ann map[string]string) *coordinationv1.Lease {
	l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: "msctl-user", ResourceVersion: rv, Annotations: ann}}
	if holder != "" {
		l.Spec.HolderIdentity = ptr.To(holder)
		l.Spec.RenewTime = ptr.To(metav1.NewMicroTime(renewed))
		l.Spec.LeaseDurationSeconds = ptr.To(int32(ttl / time.Second))
	}
	return l
}

func TestJudge(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	me := Holder{Name: "ci", Host: "runner-1", PID: os.Getpid(), Nonce: "aa"}
	ttl := time.Minute
	me.Scope = processScope()
	deadPID := map[string]string{annotationHost: "runner-1", annotationPID: "999999999", annotationStart: "1", annotationScope: me.Scope}
	otherHost := map[string]string{annotationHost: "runner-2", annotationPID: "999999999"}
	for _, tc := range []struct {
		name    string
		lease   *coordinationv1.Lease
		opts    LockOptions
		watched *observation
		want    verdict
	}{
		{"free", lease("", now, ttl, "1", nil), LockOptions{Holder: me}, nil, verdictTake},
		{"ours", lease(me.Identity(), now, ttl, "1", nil), LockOptions{Holder: me}, nil, verdictTake},
		{"live other", lease("other (h pid 1, bb)", now.Add(-10*time.Second), ttl, "1", nil), LockOptions{Holder: me}, nil, verdictHeld},
		// The same CI job name is not the same holder.
		{"same job name, other process", lease(Holder{Name: "ci", Host: "runner-2", PID: 7, Nonce: "cc"}.Identity(), now, ttl, "1", otherHost), LockOptions{Holder: me}, nil, verdictHeld},
		{"steal", lease("other", now, ttl, "1", nil), LockOptions{Holder: me, Steal: true}, nil, verdictTake},
		{"dead process of this host", lease("other", now, ttl, "1", deadPID), LockOptions{Holder: me}, nil, verdictTake},
		{"dead-looking pid of another host", lease("other", now, ttl, "1", otherHost), LockOptions{Holder: me}, nil, verdictHeld},
		// Our clock says the written renew time is long past: watch, never take at once.
		{"looks lapsed, not watched", lease("other", now.Add(-2*ttl), ttl, "1", nil), LockOptions{Holder: me}, nil, verdictWatch},
		{"looks lapsed, watched briefly", lease("other", now.Add(-2*ttl), ttl, "1", nil), LockOptions{Holder: me},
			&observation{"1", now.Add(-30 * time.Second)}, verdictWatch},
		{"looks lapsed, unchanged for its TTL", lease("other", now.Add(-2*ttl), ttl, "1", nil), LockOptions{Holder: me},
			&observation{"1", now.Add(-ttl)}, verdictTake},
		// A holder whose clock runs far ahead wrote a renew time in our
		// future: not to be believed for ever.
		{"renewed in the far future", lease("other", now.Add(2*time.Hour), ttl, "1", nil), LockOptions{Holder: me}, nil, verdictWatch},
		{"renewed a little ahead", lease("other", now.Add(10*time.Second), ttl, "1", nil), LockOptions{Holder: me}, nil, verdictHeld},
		{"looks lapsed, changed meanwhile", lease("other", now.Add(-2*ttl), ttl, "2", nil), LockOptions{Holder: me},
			&observation{"1", now.Add(-2 * ttl)}, verdictHeld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, why, _ := judge(tc.lease, me.Identity(), tc.opts, tc.watched, now); got != tc.want {
				t.Errorf("judge = %v (%s), want %v", got, why, tc.want)
			}
		})
	}
}

func TestHolderIdentity(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	gh := env(map[string]string{"GITHUB_RUN_ID": "42", "GITHUB_RUN_ATTEMPT": "2", "GITHUB_JOB": "canary"})
	a, b := CurrentHolder("", gh), CurrentHolder("", gh)
	if a.Name != "github-actions run 42-2 job canary" {
		t.Errorf("name %q", a.Name)
	}
	if a.Identity() == b.Identity() {
		t.Errorf("two holders of one CI job share the identity %q", a.Identity())
	}
	if h := CurrentHolder("", env(map[string]string{"BUILD_TAG": "jenkins-shop-7"})); h.Name != "jenkins jenkins-shop-7" {
		t.Errorf("jenkins name %q", h.Name)
	}
	if h := CurrentHolder("pasted (x pid 1, ff)", gh); h.Identity() == "pasted (x pid 1, ff)" {
		t.Error("a pasted identity must not become the identity itself")
	}
	if h := CurrentHolder("", env(nil)); h.PID != os.Getpid() || h.Start == "" {
		t.Errorf("holder %+v lacks this process", h)
	}
}

func TestHolderGone(t *testing.T) {
	host, _ := os.Hostname()
	self := CurrentHolder("t", func(string) string { return "" })
	if self.Scope == "" {
		t.Fatal("no process scope on Linux")
	}
	gone := func(ann map[string]string) bool { return holderGone(ann, host, self.Scope) }
	if gone(self.annotations()) {
		t.Error("this very process counted as gone")
	}
	reused := self.annotations()
	reused[annotationStart] = "1" // same pid, another start time: a reused pid
	if !gone(reused) {
		t.Error("a reused pid counted as the holder")
	}
	dead := self.annotations()
	dead[annotationPID] = strconv.Itoa(1 << 30)
	if !gone(dead) {
		t.Error("a pid that does not run counted as alive")
	}
	elsewhere := maps.Clone(dead)
	elsewhere[annotationHost] = "elsewhere"
	if gone(elsewhere) {
		t.Error("a process of another machine counted as gone")
	}
	// Another container with the same host name: its pids mean nothing here.
	container := maps.Clone(dead)
	container[annotationScope] = "another-boot/pid:[4026531836]"
	if gone(container) {
		t.Error("a process of another pid namespace counted as gone")
	}
	unscoped := maps.Clone(dead)
	delete(unscoped, annotationScope)
	if gone(unscoped) {
		t.Error("a holder that recorded no scope counted as gone")
	}
}

// A lock whose renewals fail (the API server unreachable) reports itself
// lost before its TTL runs out, so the run stops writing before another
// can take the Lease over.
func TestLockLostWhenRenewalsFail(t *testing.T) {
	cs := fake.NewClientset()
	var failing atomic.Bool
	cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failing.Load() {
			return true, nil, errors.New("dial tcp 127.0.0.1:6443: connect: connection refused")
		}
		return false, nil, nil
	})
	ttl := 2 * time.Second
	l, err := AcquireLock(context.Background(), cs, LockOptions{Namespace: "ns", Name: "msctl-user", Holder: CurrentHolder("t", os.Getenv), TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := l.Bind(context.Background())
	defer cancel()
	time.Sleep(ttl / 2)
	if err := l.Check(); err != nil {
		t.Fatalf("renewing normally, yet: %v", err)
	}
	failing.Store(true)
	start := time.Now()
	select {
	case <-l.Lost():
	case <-time.After(ttl * 2):
		t.Fatal("the lock never reported its loss")
	}
	if took := time.Since(start); took >= ttl {
		t.Errorf("loss reported after %s, not before the %s TTL", took, ttl)
	}
	var lost *LockLostError
	if err := l.Check(); !errors.As(err, &lost) {
		t.Errorf("Check after the loss: %v", err)
	}
	<-ctx.Done()
	if !errors.As(context.Cause(ctx), &lost) {
		t.Errorf("bound context's cause: %v", context.Cause(ctx))
	}
	// Release after a loss tries to free the Lease (the API is still
	// down: it says so), and a second Release does nothing.
	if err := l.Release(context.Background()); err == nil {
		t.Error("release with the API down reported success")
	}
	if err := l.Release(context.Background()); err != nil {
		t.Error(err)
	}
}

// A machine that slept through its TTL knows on waking, by the wall clock,
// before it writes: one renewal tells whether the Lease is still its own.
func TestLockStaleByWallClock(t *testing.T) {
	for _, apiUp := range []bool{true, false} {
		cs := fake.NewClientset()
		var failing atomic.Bool
		cs.PrependReactor("update", "leases", func(k8stesting.Action) (bool, runtime.Object, error) {
			if failing.Load() {
				return true, nil, errors.New("connection refused")
			}
			return false, nil, nil
		})
		var skew atomic.Int64
		now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
		l, err := AcquireLock(context.Background(), cs, LockOptions{Namespace: "ns", Name: "msctl-user", Holder: CurrentHolder("t", os.Getenv), TTL: time.Hour, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		skew.Store(int64(2 * time.Hour))
		failing.Store(!apiUp)
		err = l.Check()
		switch {
		case apiUp && err != nil:
			t.Errorf("the clock jumped, the renewal went through, yet: %v", err)
		case !apiUp && err == nil:
			t.Error("two hours asleep and the API unreachable, and the lock still counts as held")
		}
		_ = l.Release(context.Background())
	}
}

func TestReleaseTwice(t *testing.T) {
	cs := fake.NewClientset()
	l, err := AcquireLock(context.Background(), cs, LockOptions{Namespace: "ns", Name: "msctl-user", Holder: CurrentHolder("t", os.Getenv)})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := l.Release(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := cs.CoordinationV1().Leases("ns").Get(context.Background(), "msctl-user", metav1.GetOptions{})
	if got.Spec.HolderIdentity != nil {
		t.Errorf("released lease still names %q", *got.Spec.HolderIdentity)
	}
	if err := l.Delete(context.Background()); err != nil {
		t.Fatal(err)
	}
}
