package deploy

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/msctl/msctl/internal/kube"
)

// ScaleStable readies the stable for traffic coming back to it from the
// canary, at a rollback or a promotion: while the canary took a share, the
// stable's autoscaler scaled it down for the rest. It raises the stable's
// replicas to what stable and canary run together, within the autoscaler's
// maximum, and waits up to timeout for them to be ready; the autoscaler
// then scales it as it sees fit. A stable without an autoscaler has the
// replicas it was deployed with and is left alone. It returns the replicas
// before and after.
func (d *Deployer) ScaleStable(ctx context.Context, service string, timeout time.Duration, lock *kube.Lock) (from, to int32, err error) {
	ctx, cancel := lock.Bind(ctx)
	defer cancel()
	ns := d.Project.Namespace
	apps := d.Cluster.Clientset.AppsV1().Deployments(ns)
	hpa, err := d.Cluster.Clientset.AutoscalingV2().HorizontalPodAutoscalers(ns).Get(ctx, service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("reading the stable's autoscaler %s: %w", service, err)
	}
	stable, err := apps.Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return 0, 0, fmt.Errorf("reading the stable Deployment %s: %w", service, err)
	}
	from = replicas(stable.Spec.Replicas)
	to = from
	canary, err := apps.Get(ctx, CanaryRelease(service), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return from, from, fmt.Errorf("reading the canary Deployment %s: %w", CanaryRelease(service), err)
	default:
		to = min(hpa.Spec.MaxReplicas, from+canary.Status.ReadyReplicas)
	}
	if to <= from {
		return from, from, nil
	}
	if err := lock.Check(); err != nil {
		return from, from, err
	}
	patch := fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, to)
	if _, err := apps.Patch(ctx, service, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: "msctl"}); err != nil {
		return from, from, fmt.Errorf("scaling the stable Deployment %s to %d: %w", service, to, err)
	}
	wait, stop := context.WithTimeout(ctx, timeout)
	defer stop()
	for {
		dep, err := apps.Get(wait, service, metav1.GetOptions{})
		if err == nil && dep.Status.ReadyReplicas >= to {
			return from, to, nil
		}
		select {
		case <-wait.Done():
			ready := int32(0)
			if dep != nil {
				ready = dep.Status.ReadyReplicas
			}
			return from, to, fmt.Errorf("the stable Deployment %s has %d of %d replicas ready after %s", service, ready, to, timeout)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func replicas(n *int32) int32 {
	if n == nil {
		return 1
	}
	return *n
}
