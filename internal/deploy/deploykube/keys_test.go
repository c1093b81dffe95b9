package deploykube

import (
	"context"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/deploy"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The bundled project deploys with its keys from Secrets, not dev mode:
// every pod the cluster creates mounts its Secret read-only at the fixed
// path, with the services' *_FILE variables pointing into it, and only
// order holds the key it calls the others with.
func TestDeployedPodsMountTheKeySecret(t *testing.T) {
	d := setup(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ns := d.Project.Namespace
	for _, name := range []string{"shop-keys", "order-keys"} {
		s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns}, StringData: map[string]string{
			"api-keys.json": `{"keys": []}`, "jwks.json": `{"keys": []}`, "downstream-api-key": "k"}}
		if _, err := d.Cluster.Clientset.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	deployOK(t, d, deploy.Options{ImageTag: "v1"})

	want := map[string]struct {
		secret string
		files  map[string]string
	}{
		"user":      {"shop-keys", map[string]string{"AUTH_API_KEYS_FILE": "/etc/msctl/keys/api-keys.json", "AUTH_JWKS_FILE": "/etc/msctl/keys/jwks.json"}},
		"inventory": {"shop-keys", map[string]string{"AUTH_API_KEYS_FILE": "/etc/msctl/keys/api-keys.json", "AUTH_JWKS_FILE": "/etc/msctl/keys/jwks.json"}},
		"payment":   {"shop-keys", map[string]string{"AUTH_API_KEYS_FILE": "/etc/msctl/keys/api-keys.json", "AUTH_JWKS_FILE": "/etc/msctl/keys/jwks.json"}},
		"order": {"order-keys", map[string]string{"AUTH_API_KEYS_FILE": "/etc/msctl/keys/api-keys.json", "AUTH_JWKS_FILE": "/etc/msctl/keys/jwks.json",
			"DOWNSTREAM_API_KEY_FILE": "/etc/msctl/keys/downstream-api-key"}},
	}
	for svc, w := range want {
		pod := firstPod(ctx, t, d, svc)
		var vol *corev1.Volume
		for i := range pod.Spec.Volumes {
			if v := &pod.Spec.Volumes[i]; v.Secret != nil && v.Secret.SecretName == w.secret {
				vol = v
			}
		}
		if vol == nil {
			t.Errorf("%s: no volume of Secret %s in %+v", svc, w.secret, pod.Spec.Volumes)
			continue
		}
		if m := vol.Secret.DefaultMode; m == nil || *m != 0o440 {
			t.Errorf("%s: the Secret's files have mode %v, want 0440", svc, m)
		}
		c := pod.Spec.Containers[0]
		mounted := false
		for _, m := range c.VolumeMounts {
			if m.Name == vol.Name {
				mounted = m.MountPath == config.KeysMountPath && m.ReadOnly
			}
		}
		if !mounted {
			t.Errorf("%s: Secret %s is not mounted read-only at %s: %+v", svc, w.secret, config.KeysMountPath, c.VolumeMounts)
		}
		got := map[string]string{}
		for _, e := range c.Env {
			switch e.Name {
			case "AUTH_API_KEYS_FILE", "AUTH_JWKS_FILE", "AUTH_JWT_PUBLIC_KEY_FILE", "DOWNSTREAM_API_KEY_FILE":
				got[e.Name] = e.Value
			case "AUTH_DEV_MODE":
				t.Errorf("%s runs in dev mode", svc)
			}
		}
		if len(got) != len(w.files) {
			t.Errorf("%s: key variables %v, want %v", svc, got, w.files)
		}
		for k, v := range w.files {
			if got[k] != v {
				t.Errorf("%s: %s=%q, want %q", svc, k, got[k], v)
			}
		}
		cm, err := d.Cluster.Clientset.CoreV1().ConfigMaps(ns).Get(ctx, svc, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if _, dev := cm.Data["AUTH_DEV_MODE"]; dev {
			t.Errorf("%s's ConfigMap turns dev mode on", svc)
		}
	}
}

// firstPod waits for a pod of the service's stable Deployment.
func firstPod(ctx context.Context, t *testing.T, d *deploy.Deployer, svc string) corev1.Pod {
	t.Helper()
	for {
		pods, err := d.Cluster.Clientset.CoreV1().Pods(d.Project.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app=" + svc + ",version=stable"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) > 0 {
			return pods.Items[0]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no pod of %s", svc)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
