package deploykube

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/render"
)

// The canary has an autoscaler of its own, as the stable has; before the
// canary's traffic returns to the stable, the stable is scaled to what
// both ran together, and its pods are ready.
func TestTheStableIsScaledForTheCanarysTraffic(t *testing.T) {
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
	if _, err := d.Cluster.Clientset.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, "user-canary", metav1.GetOptions{}); err != nil {
		t.Fatalf("the canary's autoscaler: %v", err)
	}
	// Both autoscalers bring their Deployment to its minimum, 2.
	ready := func(name string, want int32) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) {
			dep, err := d.Cluster.Clientset.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
			if err == nil && dep.Status.ReadyReplicas == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %v ready, want %d (%v)", name, dep.Status.ReadyReplicas, want, err)
			}
		}
	}
	ready("user", 2)
	ready("user-canary", 2)
	from, to, err := d.ScaleStable(ctx, "user", time.Minute, lock)
	if err != nil || from != 2 || to != 4 {
		t.Fatalf("ScaleStable: %d to %d, %v; want 2 to 4", from, to, err)
	}
	ready("user", 4)
}
