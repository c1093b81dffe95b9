package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	helmkube "helm.sh/helm/v4/pkg/kube"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
)

// While a canary runs, the stable's autoscaler may not take the stable
// below the replicas it ran before the canary: at a rollback or a
// promotion every request returns to the stable at once, and an autoscaler
// that followed the stable's shrinking share would meet them with a few
// pods, then need minutes to scale up. Argo Rollouts keeps its stable
// scaled the same way (dynamicStableScale off). The hold is the autoscaler's
// minReplicas raised; the annotation records what it was and what it is
// held at, so that a rerun after a crash keeps the hold it placed, and
// lifts it at the end. A Helm upgrade of the stable (the promotion, or
// restoring the stable at an abort) applies the chart's minReplicas: the
// hold is put back as soon as Helm has applied its objects, before it
// waits for them (keepHolds).

// holdAnnotation on the stable's HorizontalPodAutoscaler is "before held":
// its minReplicas before the canary and the one the canary holds it at.
const holdAnnotation = "msctl.dev/canary-min-replicas"

// holdFieldManager owns the hold's fields until the stable's next upgrade.
const holdFieldManager = "msctl-canary"

// hold is what the annotation records.
type hold struct{ before, held int32 }

func readHold(hpa *autoscalingv2.HorizontalPodAutoscaler) (hold, bool) {
	var h hold
	mark, ok := hpa.Annotations[holdAnnotation]
	if !ok {
		return h, false
	}
	if _, err := fmt.Sscanf(mark, "%d %d", &h.before, &h.held); err != nil || h.before < 0 || h.held < 1 {
		// Not ours to read: it holds nothing.
		return hold{before: -1}, true
	}
	return h, true
}

func minReplicasOf(hpa *autoscalingv2.HorizontalPodAutoscaler) int32 {
	if hpa.Spec.MinReplicas == nil {
		return 1
	}
	return *hpa.Spec.MinReplicas
}

// stableHPA is the stable's autoscaler, nil when it has none.
func (d *Deployer) stableHPA(ctx context.Context, service string) (*autoscalingv2.HorizontalPodAutoscaler, error) {
	hpa, err := d.Cluster.Clientset.AutoscalingV2().HorizontalPodAutoscalers(d.Project.Namespace).Get(ctx, service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the stable's autoscaler %s: %w", service, err)
	}
	return hpa, nil
}

// holdStable raises the stable's autoscaler's minReplicas to the replicas
// the stable runs now, within its maxReplicas. A service without an
// autoscaler, or at its minimum, is left as it is; one held already keeps
// its hold. An annotation left by a canary that ended otherwise (its
// minReplicas is not the one recorded) is replaced.
func (d *Deployer) holdStable(ctx context.Context, service string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return d.tryHold(ctx, service) })
}

func (d *Deployer) tryHold(ctx context.Context, service string) error {
	hpa, err := d.stableHPA(ctx, service)
	if hpa == nil || err != nil {
		return err
	}
	current := minReplicasOf(hpa)
	if h, ok := readHold(hpa); ok && h.held == current {
		return nil
	}
	dep, err := d.Cluster.Clientset.AppsV1().Deployments(d.Project.Namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the stable's Deployment %s: %w", service, err)
	}
	held := dep.Status.Replicas
	if dep.Spec.Replicas != nil {
		held = *dep.Spec.Replicas
	}
	held = min(held, hpa.Spec.MaxReplicas)
	if held <= current {
		if _, ok := hpa.Annotations[holdAnnotation]; ok {
			return d.patchHold(ctx, service, hpa.ResourceVersion, "", -1)
		}
		return nil
	}
	return d.patchHold(ctx, service, hpa.ResourceVersion, fmt.Sprintf("%d %d", current, held), held)
}

// freeStable takes the hold off the stable's autoscaler: minReplicas goes
// back to what it was, unless something other than the hold set it since.
func (d *Deployer) freeStable(ctx context.Context, service string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return d.tryFree(ctx, service) })
}

func (d *Deployer) tryFree(ctx context.Context, service string) error {
	hpa, err := d.stableHPA(ctx, service)
	if hpa == nil || err != nil {
		return err
	}
	h, ok := readHold(hpa)
	if !ok {
		return nil
	}
	to := int32(-1) // the annotation goes, minReplicas stays
	if h.before >= 0 && minReplicasOf(hpa) == h.held {
		to = h.before
	}
	return d.patchHold(ctx, service, hpa.ResourceVersion, "", to)
}

// keepHolds puts back the hold on every autoscaler of target that has one,
// after a Helm upgrade applied the chart's minReplicas to it. It is best
// effort: a hold that cannot be put back costs capacity, not correctness.
func (d *Deployer) keepHolds(target helmkube.ResourceList) {
	for _, info := range target {
		if info.Mapping == nil || info.Mapping.GroupVersionKind.Kind != "HorizontalPodAutoscaler" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			hpa, err := d.Cluster.Clientset.AutoscalingV2().HorizontalPodAutoscalers(info.Namespace).Get(ctx, info.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			h, ok := readHold(hpa)
			if !ok || h.before < 0 || minReplicasOf(hpa) == h.held {
				return nil
			}
			// What the chart applied is the minimum to go back to.
			return d.patchHold(ctx, info.Name, hpa.ResourceVersion, fmt.Sprintf("%d %d", minReplicasOf(hpa), h.held), h.held)
		})
		cancel()
		if err != nil && !apierrors.IsNotFound(err) {
			d.Log.Warn("the stable's autoscaler lost its hold during the canary", "autoscaler", info.Name, "error", err)
		}
	}
}

// patchHold writes the hold's annotation (removed when mark is empty) and,
// when minReplicas is not negative, the autoscaler's minReplicas. The
// resourceVersion makes it a conflict, which the callers retry, rather
// than overwrite a change made since the autoscaler was read.
func (d *Deployer) patchHold(ctx context.Context, service, version, mark string, minReplicas int32) error {
	var annotation any
	if mark != "" {
		annotation = mark
	}
	patch := map[string]any{"metadata": map[string]any{
		"resourceVersion": version,
		"annotations":     map[string]any{holdAnnotation: annotation},
	}}
	if minReplicas >= 0 {
		patch["spec"] = map[string]any{"minReplicas": minReplicas}
	}
	body, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = d.Cluster.Clientset.AutoscalingV2().HorizontalPodAutoscalers(d.Project.Namespace).
		Patch(ctx, service, types.MergePatchType, body, metav1.PatchOptions{FieldManager: holdFieldManager})
	if err != nil {
		return fmt.Errorf("the stable's autoscaler %s: %w", service, err)
	}
	return nil
}
