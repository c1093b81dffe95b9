package deploykube

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
	dep, err := d.Cluster.Clientset.AppsV1().Deployments(ns).Get(ctx, "user-canary", metav1.GetOptions{})
	if err != nil || dep.Spec.Replicas == nil || *dep.Spec.Replicas != int32(d.Project.Service("user").Replicas) {
		t.Fatalf("the canary Deployment: replicas %v, %v; want the chart's %d", dep.Spec.Replicas, err, d.Project.Service("user").Replicas)
	}
}
