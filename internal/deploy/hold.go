package deploy

import (
	"context"
	"encoding/json"
	"fmt"

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
// minReplicas raised; the annotation records what it was, so that a rerun
// after a crash lifts the hold it did not place, and the stable's next Helm
// upgrade (a promotion) takes minReplicas back by itself.

// holdAnnotation on the stable's HorizontalPodAutoscaler is "before held":
// its minReplicas before the canary and the one the canary holds it at.
const holdAnnotation = "msctl.dev/canary-min-replicas"

// holdStable raises the stable's autoscaler's minReplicas to the replicas
// the stable runs now, within its maxReplicas. A service without an
// autoscaler, one already held, or one at its minimum is left as it is.
func (d *Deployer) holdStable(ctx context.Context, service string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return d.tryHold(ctx, service) })
}

func (d *Deployer) tryHold(ctx context.Context, service string) error {
	hpas := d.Cluster.Clientset.AutoscalingV2().HorizontalPodAutoscalers(d.Project.Namespace)
	hpa, err := hpas.Get(ctx, service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the stable's autoscaler %s: %w", service, err)
	}
	if _, ok := hpa.Annotations[holdAnnotation]; ok {
		return nil
	}
	dep, err := d.Cluster.Clientset.AppsV1().Deployments(d.Project.Namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("reading the stable's Deployment %s: %w", service, err)
	}
	before := int32(1)
	if hpa.Spec.MinReplicas != nil {
		before = *hpa.Spec.MinReplicas
	}
	held := min(dep.Status.Replicas, hpa.Spec.MaxReplicas)
	if dep.Spec.Replicas != nil {
		held = min(*dep.Spec.Replicas, hpa.Spec.MaxReplicas)
	}
	if held <= before {
		return nil
	}
	return d.patchHold(ctx, service, hpa.ResourceVersion, fmt.Sprintf("%d %d", before, held), held)
}

// freeStable takes the hold off the stable's autoscaler: minReplicas goes
// back to what it was, unless something other than the hold set it since
// (the promotion's upgrade did).
func (d *Deployer) freeStable(ctx context.Context, service string) error {
	return retry.RetryOnConflict(retry.DefaultRetry, func() error { return d.tryFree(ctx, service) })
}

func (d *Deployer) tryFree(ctx context.Context, service string) error {
	hpa, err := d.Cluster.Clientset.AutoscalingV2().HorizontalPodAutoscalers(d.Project.Namespace).Get(ctx, service, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the stable's autoscaler %s: %w", service, err)
	}
	mark, ok := hpa.Annotations[holdAnnotation]
	if !ok {
		return nil
	}
	var before, held int32
	if _, err := fmt.Sscanf(mark, "%d %d", &before, &held); err != nil || before < 1 {
		return fmt.Errorf("the stable's autoscaler %s: annotation %s is %q, not \"<before> <held>\"", service, holdAnnotation, mark)
	}
	if current := hpa.Spec.MinReplicas; current == nil || *current != held {
		before = 0 // the annotation goes, minReplicas stays
	}
	return d.patchHold(ctx, service, hpa.ResourceVersion, "", before)
}

// patchHold writes the hold's annotation (removed when mark is empty) and,
// when minReplicas is not zero, the autoscaler's minReplicas. The
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
	if minReplicas > 0 {
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

// holdFieldManager owns the hold's fields until the stable's next upgrade.
const holdFieldManager = "msctl-canary"
