package canarystate

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// ErrConflict says the state changed since it was loaded: load it again and
// decide again.
var ErrConflict = errors.New("the canary state changed meanwhile")

// Store keeps one service's canary state. Save is a compare-and-swap on the
// version Load returned, never a blind write.
type Store interface {
	// Load returns the state and its version; nil and "" when there is
	// none.
	Load(ctx context.Context) (*State, string, error)
	// Save writes s if the stored version is still version ("" creates
	// it) and returns the new version, or ErrConflict.
	Save(ctx context.Context, s *State, version string) (string, error)
}

// ObjectName is the ConfigMap that holds a service's canary state.
func ObjectName(service string) string { return "msctl-canary-" + service }

const dataKey = "state.json"

// ConfigMapStore keeps the state in a ConfigMap in the service's namespace,
// updated by compare-and-swap on its resourceVersion.
type ConfigMapStore struct {
	Client    kubernetes.Interface
	Namespace string
	Service   string
	// Labels go on a ConfigMap the store creates.
	Labels map[string]string
}

// Load implements Store.
func (c *ConfigMapStore) Load(ctx context.Context) (*State, string, error) {
	cm, err := c.Client.CoreV1().ConfigMaps(c.Namespace).Get(ctx, ObjectName(c.Service), metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading the canary state of %s: %w", c.Service, err)
	}
	s, err := Decode([]byte(cm.Data[dataKey]))
	if err != nil {
		return nil, "", fmt.Errorf("ConfigMap %s/%s: %w", c.Namespace, cm.Name, err)
	}
	return s, cm.ResourceVersion, nil
}

// Save implements Store.
func (c *ConfigMapStore) Save(ctx context.Context, s *State, version string) (string, error) {
	b, err := Encode(s)
	if err != nil {
		return "", err
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: ObjectName(c.Service), Namespace: c.Namespace, Labels: c.Labels, ResourceVersion: version},
		Data:       map[string]string{dataKey: string(b)},
	}
	cms := c.Client.CoreV1().ConfigMaps(c.Namespace)
	var out *corev1.ConfigMap
	if version == "" {
		out, err = cms.Create(ctx, cm, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			return "", ErrConflict
		}
	} else {
		out, err = cms.Update(ctx, cm, metav1.UpdateOptions{})
		if apierrors.IsConflict(err) || apierrors.IsNotFound(err) {
			return "", ErrConflict
		}
	}
	if err != nil {
		return "", fmt.Errorf("writing the canary state of %s: %w", c.Service, err)
	}
	return out.ResourceVersion, nil
}
