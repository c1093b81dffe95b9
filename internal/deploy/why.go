package deploy

import (
	"context"
	"fmt"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
)

// whyNotReady explains a failed rollout from the pods' side: which pod is
// not ready, and its last event or condition. Helm only says the
// Deployment was not ready in time.
func (d *Deployer) whyNotReady(ctx context.Context, service string, cause error) string {
	pods, err := d.Cluster.Clientset.CoreV1().Pods(d.Project.Namespace).List(ctx, metav1.ListOptions{
		LabelSelector: "app=" + service,
	})
	if err != nil || len(pods.Items) == 0 {
		return d.deploymentReadiness(ctx, service, cause)
	}
	sort.Slice(pods.Items, func(i, j int) bool {
		return pods.Items[i].CreationTimestamp.After(pods.Items[j].CreationTimestamp.Time)
	})
	for _, pod := range pods.Items {
		if podReady(&pod) {
			continue
		}
		reason := podCondition(&pod)
		if ev := lastEvent(ctx, d, &pod); ev != "" {
			reason = ev
		}
		return fmt.Sprintf("Deployment %s not ready: pod %s: %s", service, pod.Name, reason)
	}
	return d.deploymentReadiness(ctx, service, cause)
}

// deploymentReadiness says how many replicas were ready, when no pod tells
// more; Helm's own error (a rate limiter's deadline, say) is the last resort.
func (d *Deployer) deploymentReadiness(ctx context.Context, service string, cause error) string {
	dep, err := d.Cluster.Clientset.AppsV1().Deployments(d.Project.Namespace).Get(ctx, service, metav1.GetOptions{})
	if err != nil || dep.Spec.Replicas == nil || dep.Status.ReadyReplicas >= *dep.Spec.Replicas {
		return oneLine(cause.Error())
	}
	return fmt.Sprintf("Deployment %s has %d of %d replicas ready", service, dep.Status.ReadyReplicas, *dep.Spec.Replicas)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func podCondition(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			msg := fmt.Sprintf("%s is %s", c.Type, c.Status)
			if c.Reason != "" {
				msg += " (" + c.Reason + ")"
			}
			if c.Message != "" {
				msg += ": " + c.Message
			}
			return msg
		}
	}
	return "phase " + string(p.Status.Phase)
}

func lastEvent(ctx context.Context, d *Deployer, p *corev1.Pod) string {
	evs, err := d.Cluster.Clientset.CoreV1().Events(p.Namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("involvedObject.name", p.Name).String(),
	})
	if err != nil || len(evs.Items) == 0 {
		return ""
	}
	sort.Slice(evs.Items, func(i, j int) bool { return evs.Items[i].LastTimestamp.Before(&evs.Items[j].LastTimestamp) })
	e := evs.Items[len(evs.Items)-1]
	if e.Type != corev1.EventTypeWarning {
		return ""
	}
	return fmt.Sprintf("%s: %s", e.Reason, e.Message)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
