package deploykube

import (
	"context"
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/render"
)

// The canary has an autoscaler of its own, as the stable has, so it
// scales with its share of the traffic; it starts with the replicas the
// chart gives, not one pod waiting for its autoscaler.
func TestTheCanaryScalesWithItsShare(t *testing.T) {
	d := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	deployOK(t, d, deploy.Options{ImageTag: "v1", Services: []string{"user"}})
	lock, err := d.Lock(ctx, "user", holder("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release(context.Background())
	img := render.ServiceImage(d.Project, d.Project.Service("user"), "v2")
	if err := d.DeployCanary(ctx, "user", img, 2*time.Minute, lock); err != nil {
		t.Fatal(err)
	}
	ns := d.Project.Namespace
	hpa, err := d.Cluster.Clientset.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "user-canary", metav1.GetOptions{})
	if err != nil || hpa.Spec.ScaleTargetRef.Name != "user-canary" {
		t.Fatalf("the canary's autoscaler: %+v, %v", hpa, err)
	}
	// The canary has a Service of its own, which the routes send its share
	// to: its pods only.
	svc, err := d.Cluster.Clientset.CoreV1().Services(ns).Get(ctx, "user-canary", metav1.GetOptions{})
	if err != nil || fmt.Sprint(svc.Spec.Selector) != "map[app:user version:canary]" {
		t.Fatalf("the canary's Service: %v, %v", svc, err)
	}
	dep, err := d.Cluster.Clientset.AppsV1().Deployments(ns).Get(ctx, "user-canary", metav1.GetOptions{})
	if err != nil || dep.Spec.Replicas == nil || *dep.Spec.Replicas != int32(d.Project.Service("user").Replicas) {
		t.Fatalf("the canary Deployment: replicas %v, %v; want the chart's %d", dep.Spec.Replicas, err, d.Project.Service("user").Replicas)
	}
}

// While a canary runs, the stable's autoscaler keeps the stable at the
// scale it had when the canary started, so the requests that return to it
// at a rollback or a promotion meet as many pods as before, through the
// promotion's upgrade of the stable. Removing the canary lifts the hold.
func TestTheStableKeepsItsScaleWhileACanaryRuns(t *testing.T) {
	d := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	deployOK(t, d, deploy.Options{ImageTag: "v1", Services: []string{"user"}})
	ns := d.Project.Namespace
	hpas := d.Cluster.Clientset.AutoscalingV2().HorizontalPodAutoscalers(ns)
	deps := d.Cluster.Clientset.AppsV1().Deployments(ns)
	minReplicas := func() (int32, string) {
		t.Helper()
		hpa, err := hpas.Get(ctx, "user", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return *hpa.Spec.MinReplicas, hpa.Annotations["msctl.dev/canary-min-replicas"]
	}
	scale := func(n int32) {
		t.Helper()
		s, err := deps.GetScale(ctx, "user", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		s.Spec.Replicas = n
		if _, err := deps.UpdateScale(ctx, "user", s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	chartMin, _ := minReplicas()
	// The autoscaler had scaled the stable up under load before the canary.
	scale(chartMin + 2)

	lock, err := d.Lock(ctx, "user", holder("test"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release(context.Background())
	v2 := render.ServiceImage(d.Project, d.Project.Service("user"), "v2")
	for range 2 { // a retried deploy of the canary keeps the first hold
		if err := d.DeployCanary(ctx, "user", v2, 2*time.Minute, lock); err != nil {
			t.Fatal(err)
		}
		if got, mark := minReplicas(); got != chartMin+2 || mark != fmt.Sprintf("%d %d", chartMin, chartMin+2) {
			t.Fatalf("the stable's autoscaler during the canary: minReplicas %d, hold %q; want %d held from %d", got, mark, chartMin+2, chartMin)
		}
	}
	// The canary takes the stable's requests and the stable is scaled
	// down: its autoscaler scales it back up to the hold.
	scale(chartMin)
	deadline := time.Now().Add(90 * time.Second)
	for {
		dep, err := deps.Get(ctx, "user", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if *dep.Spec.Replicas == chartMin+2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the stable has %d replicas 90s after being scaled down; the hold keeps %d", *dep.Spec.Replicas, chartMin+2)
		}
		time.Sleep(time.Second)
	}
	if err := d.RemoveCanary(ctx, "user", time.Minute, lock); err != nil {
		t.Fatal(err)
	}
	if got, mark := minReplicas(); got != chartMin || mark != "" {
		t.Fatalf("after the canary: minReplicas %d, hold %q; want %d, none", got, mark, chartMin)
	}

	// An annotation a canary left behind holds nothing: the next canary
	// holds the stable afresh.
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"msctl.dev/canary-min-replicas":"%d 9"}}}`, chartMin)
	if _, err := hpas.Patch(ctx, "user", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// A promotion: the stable's upgrade applies the chart's minimum, and
	// the hold is put back before traffic returns; the stable keeps its
	// replicas.
	if err := d.DeployCanary(ctx, "user", v2, 2*time.Minute, lock); err != nil {
		t.Fatal(err)
	}
	if got, mark := minReplicas(); got != chartMin+2 || mark != fmt.Sprintf("%d %d", chartMin, chartMin+2) {
		t.Fatalf("over a stale annotation: minReplicas %d, hold %q; want %d held from %d", got, mark, chartMin+2, chartMin)
	}
	if _, err := d.PromoteStable(ctx, "user", v2, 2*time.Minute, lock); err != nil {
		t.Fatal(err)
	}
	if got, _ := minReplicas(); got != chartMin+2 {
		t.Fatalf("after the promotion's upgrade: minReplicas %d, want the hold's %d", got, chartMin+2)
	}
	if dep, err := deps.Get(ctx, "user", metav1.GetOptions{}); err != nil || *dep.Spec.Replicas != chartMin+2 {
		t.Fatalf("the promoted stable: %v replicas, %v; want the %d it had", dep.Spec.Replicas, err, chartMin+2)
	}
	if err := d.RemoveCanary(ctx, "user", time.Minute, lock); err != nil {
		t.Fatal(err)
	}
	if got, mark := minReplicas(); got != chartMin || mark != "" {
		t.Fatalf("after the promotion: minReplicas %d, hold %q; want %d, none", got, mark, chartMin)
	}
}
