package deploykube

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/testcluster"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestDeployRedeployUpgrade(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	res := states(deployOK(t, d, deploy.Options{ImageTag: "v1"}))
	for _, name := range d.Project.ServiceNames() {
		r := res[name]
		if r.State != deploy.StateDeployed || r.Revision != 1 {
			t.Errorf("%s: %+v", name, r)
		}
		// The autoscaler brings the Deployment up to its minimum after the
		// release is ready, so Available may take a moment more.
		var dep *appsv1.Deployment
		deadline := time.Now().Add(30 * time.Second)
		for {
			var err error
			dep, err = d.Cluster.Clientset.AppsV1().Deployments(d.Project.Namespace).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if available(dep) || time.Now().After(deadline) {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if !available(dep) {
			t.Errorf("%s is not Available: %+v", name, dep.Status)
		}
		for _, kind := range []string{"VirtualService", "DestinationRule"} {
			api := "networking.istio.io/v1"
			if obj, err := d.Applier().Get(ctx, api, kind, d.Project.Namespace, name); err != nil || obj == nil {
				t.Errorf("%s %s not stored: %v", kind, name, err)
			}
		}
		if obj, err := d.Applier().Get(ctx, "security.istio.io/v1", "AuthorizationPolicy", d.Project.Namespace, name); err != nil || obj == nil {
			t.Errorf("AuthorizationPolicy %s not stored: %v", name, err)
		}
	}

	nsObj, err := d.Cluster.Clientset.CoreV1().Namespaces().Get(ctx, d.Project.Namespace, metav1.GetOptions{})
	if err != nil || nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" || nsObj.Labels["istio-injection"] != "enabled" {
		t.Errorf("namespace labels %v, %v: want Pod Security restricted enforced and Istio injection", nsObj.Labels, err)
	}

	res = states(deployOK(t, d, deploy.Options{ImageTag: "v1"}))
	for _, name := range d.Project.ServiceNames() {
		if r := res[name]; r.State != deploy.StateUnchanged || r.Revision != 1 {
			t.Errorf("redeploy of %s: %+v", name, r)
		}
	}

	res = states(deployOK(t, d, deploy.Options{ImageTag: "v2", Services: []string{"payment"}}))
	if r := res["payment"]; r.State != deploy.StateDeployed || r.Revision != 2 || !strings.HasSuffix(r.Image, ":v2") {
		t.Errorf("upgrade of payment: %+v", r)
	}
	dep, _ := d.Cluster.Clientset.AppsV1().Deployments(d.Project.Namespace).Get(ctx, "payment", metav1.GetOptions{})
	if img := dep.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, ":v2") {
		t.Errorf("payment runs %s", img)
	}
}

func TestRolloutThatNeverBecomesReadyRollsBack(t *testing.T) {
	d := setup(t)
	deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	bad := []map[string]any{{"podLabels": map[string]any{testcluster.FailReadinessLabel: "true"}}}
	res, err := d.Deploy(ctx, deploy.Options{Services: []string{"user"}, ImageTag: "v2", Values: bad,
		Wait: true, Atomic: true, Timeout: 8 * time.Second, Lock: holder("test")})
	var failed *deploy.Failed
	if !errors.As(err, &failed) {
		t.Fatalf("want *deploy.Failed, got %v", err)
	}
	r := res[0]
	t.Logf("reported: %s", r.Message)
	if r.State != deploy.StateRolledBack || !strings.Contains(r.Message, "not ready: pod user-") || !strings.Contains(r.Message, "rolled back to revision 1") {
		t.Fatalf("result %+v", r)
	}
	dep, _ := d.Cluster.Clientset.AppsV1().Deployments(d.Project.Namespace).Get(ctx, "user", metav1.GetOptions{})
	if img := dep.Spec.Template.Spec.Containers[0].Image; !strings.HasSuffix(img, ":v1") {
		t.Errorf("after the rollback user runs %s, want v1", img)
	}
}

// TestConcurrentDeploysExactlyOneProceeds runs two deploys at once, of one
// service and of the same three services listed in different orders: one
// proceeds and the other fails with the lock error before writing (never
// both failing on each other's half of the locks).
func TestConcurrentDeploysExactlyOneProceeds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		a, b   []string
		checks []string
	}{
		{"one service", []string{"inventory"}, []string{"inventory"}, []string{"inventory"}},
		{"overlapping services", []string{"user", "inventory", "payment"}, []string{"payment", "inventory", "user"},
			[]string{"user", "inventory", "payment"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := setup(t)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, name := range []string{"ci-job-1", "ci-job-2"} {
				services := [][]string{tc.a, tc.b}[i]
				wg.Go(func() {
					_, errs[i] = d.Deploy(ctx, deploy.Options{Services: services, Wait: true, Lock: holder(name)})
				})
			}
			wg.Wait()
			var held *kube.LockHeldError
			ok, lockedOut := 0, 0
			for _, err := range errs {
				switch {
				case err == nil:
					ok++
				case errors.As(err, &held):
					lockedOut++
					if !strings.HasPrefix(held.Holder, "ci-job-1 (") && !strings.HasPrefix(held.Holder, "ci-job-2 (") {
						t.Errorf("lock error names %q", held.Holder)
					}
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}
			if ok != 1 || lockedOut != 1 {
				t.Fatalf("%d deploys proceeded and %d were locked out: %v", ok, lockedOut, errs)
			}
			// Every service has exactly one revision: the run locked out wrote none.
			for _, name := range tc.checks {
				hist, err := d.History(ctx, name)
				if err != nil || len(hist) != 1 {
					t.Errorf("%s: history %v, %v; want one revision", name, hist, err)
				}
			}
		})
	}
}

// An Istio object msctl applied for a service and a later render no longer
// produces is removed: here the scrape exception once Prometheus scrapes
// over mTLS.
func TestDeployRemovesIstioObjectsNoLongerRendered(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	pa := func() bool {
		obj, err := d.Applier().Get(ctx, "security.istio.io/v1", "PeerAuthentication", d.Project.Namespace, "user")
		if err != nil {
			t.Fatal(err)
		}
		return obj != nil
	}
	if !pa() {
		t.Fatal("no scrape exception after the first deploy")
	}
	d.Project.Prometheus.Scrape = config.ScrapeMTLS
	deployOK(t, d, deploy.Options{Services: []string{"user"}, ImageTag: "v1"})
	if pa() {
		t.Error("the scrape exception outlived the render that stopped producing it")
	}
	if st, err := d.Status(ctx, []string{"user"}); err != nil || len(st[0].Drift) != 0 {
		t.Errorf("status after the change: %+v %v", st, err)
	}
}
