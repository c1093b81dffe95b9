package testcluster

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// createNodes creates n nodes for kwok to manage and waits until they are
// Ready and schedulable.
func createNodes(ctx context.Context, cs kubernetes.Interface, n int) error {
	capacity := corev1.ResourceList{
		corev1.ResourceCPU:    resource.MustParse("32"),
		corev1.ResourceMemory: resource.MustParse("256Gi"),
		corev1.ResourcePods:   resource.MustParse("110"),
	}
	names := make([]string, n)
	for i := range n {
		name := fmt.Sprintf("kwok-node-%d", i)
		names[i] = name
		node := &corev1.Node{
			ObjectMeta: metav1.ObjectMeta{
				Name:        name,
				Annotations: map[string]string{kwokNodeAnnotation: "fake"},
				Labels: map[string]string{
					"kubernetes.io/hostname": name,
					"kubernetes.io/os":       "linux",
					"kubernetes.io/arch":     "amd64",
					"type":                   "kwok",
				},
			},
			Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
		}
		if _, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("create node %s: %w", name, err)
		}
		// Admission taints a new node not-ready, and only the node lifecycle
		// controller, which is off because kwok's nodes have no kubelet,
		// would lift it: without this, pods stay Pending.
		patch := []byte(`{"spec":{"taints":null}}`)
		if _, err := cs.CoreV1().Nodes().Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("remove the not-ready taint of node %s: %w", name, err)
		}
	}
	for _, name := range names {
		var last string
		err := poll(ctx, 100*time.Millisecond, func() (bool, error) {
			node, err := cs.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				last = err.Error()
				return false, nil
			}
			for _, c := range node.Status.Conditions {
				if c.Type == corev1.NodeReady {
					last = fmt.Sprintf("Ready=%s", c.Status)
					return c.Status == corev1.ConditionTrue, nil
				}
			}
			last = "no Ready condition yet"
			return false, nil
		})
		if err != nil {
			return fmt.Errorf("node %s not Ready (kwok manages it): %w (last seen: %s)", name, err, last)
		}
	}
	return nil
}

// waitServiceAccount waits for the default service account of namespace:
// the API server refuses pods in a namespace until it exists.
func waitServiceAccount(ctx context.Context, cs kubernetes.Interface, namespace string) error {
	var last error
	err := poll(ctx, 50*time.Millisecond, func() (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		if err == nil {
			return true, nil
		}
		last = err
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("service account %s/default: %w (last error: %v)", namespace, err, last)
	}
	return nil
}
