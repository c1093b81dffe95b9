package deploykube

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/testcluster"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestConnectErrorsNameTheCluster(t *testing.T) {
	ctx := context.Background()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	// A port nothing listens on, then the real server with a token it
	// never issued.
	cfg := `apiVersion: v1
kind: Config
clusters:
- name: dead
  cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}
users:
- name: u
  user: {token: forged}
contexts:
- name: dead
  context: {cluster: dead, user: u}
current-context: dead
`
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := kube.Connect(ctx, kube.ConnectOptions{Kubeconfig: kubeconfig, Context: "nope"})
	if !errors.As(err, new(*kube.ConfigError)) || err.Error() != `context "nope" is not in the kubeconfig` {
		t.Errorf("unknown context: %v", err)
	}
	_, err = kube.Connect(ctx, kube.ConnectOptions{Kubeconfig: kubeconfig, Timeout: 3 * time.Second})
	if !errors.As(err, new(*kube.UnreachableError)) || !strings.HasPrefix(err.Error(), `cluster of context "dead" (https://127.0.0.1:1): cannot connect`) {
		t.Errorf("unreachable: %v", err)
	}
	rc := cluster.RESTConfig()
	forged := strings.Replace(cfg, "https://127.0.0.1:1", rc.Host, 1)
	if err := os.WriteFile(kubeconfig, []byte(forged), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = kube.Connect(ctx, kube.ConnectOptions{Kubeconfig: kubeconfig})
	if !errors.As(err, new(*kube.UnreachableError)) || !strings.Contains(err.Error(), "refused the credentials") {
		t.Errorf("forged token: %v", err)
	}
}

// A deploy killed with SIGKILL in the middle leaves a pending release and a
// held lock. While it runs, another job is told who holds the lock; after
// the kill, a rerun on the same machine takes the lock over at once (its
// holder is gone), says so, mends the pending revision and converges.
func TestKilledDeployThenRerunConverges(t *testing.T) {
	d := setup(t)
	ns := d.Project.Namespace
	job := func(name string) []string { return []string{"MSCTL_HOLDER=" + name} }
	for _, tc := range []struct {
		name  string
		setup func()
	}{
		{"first install", func() {}},
		{"upgrade", func() {
			if out, err := msctl(t, ns, job("ci-job-7"), "deploy", "user", "--tag", "v1").CombinedOutput(); err != nil {
				t.Fatalf("first deploy: %v\n%s", err, out)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = msctl(t, ns, job("cleanup"), "destroy", "user", "--yes").Run()
			tc.setup()
			// Pods that never become ready keep the deploy waiting.
			stuck := msctl(t, ns, job("ci-job-7"), "deploy", "user", "--tag", "v2", "--timeout", "5m",
				"--set-string", "podLabels.msctl\\.dev/fail-readiness=true")
			if err := stuck.Start(); err != nil {
				t.Fatal(err)
			}
			waitPending(t, d, "user")
			// The same CI job's name on another process is another holder.
			out, err := msctl(t, ns, job("ci-job-7"), "deploy", "user", "--tag", "v2").CombinedOutput()
			if exitCode(err) != 7 || !strings.Contains(string(out), `locked by "ci-job-7 (`) {
				t.Fatalf("another job during the lock: %v\n%s", err, out)
			}
			if err := stuck.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = stuck.Wait()

			out, err = msctl(t, ns, job("ci-job-8"), "deploy", "user", "--tag", "v2", "-o", "json").CombinedOutput()
			if err != nil {
				t.Fatalf("rerun: %v\n%s", err, out)
			}
			for _, want := range []string{"taking over the lock", "no longer runs", "left pending-", `"state": "deployed"`} {
				if !strings.Contains(string(out), want) {
					t.Errorf("rerun output lacks %q:\n%s", want, out)
				}
			}
			// The autoscaler brings a first install up to its minimum after
			// the release is ready.
			var st []deploy.ServiceStatus
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
				st, err = d.Status(context.Background(), []string{"user"})
				if err != nil || st[0].Ready == st[0].Desired || time.Now().After(deadline) {
					break
				}
			}
			if err != nil || st[0].Release != "deployed" || !strings.HasSuffix(st[0].Image, ":v2") || st[0].Ready != st[0].Desired {
				t.Errorf("after the rerun: %+v %v", st, err)
			}
		})
	}
}

// waitPending waits until a release revision of service is pending, which
// means Helm is applying or waiting.
func waitPending(t *testing.T, d *deploy.Deployer, service string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		secrets, err := d.Cluster.Clientset.CoreV1().Secrets(d.Project.Namespace).List(context.Background(),
			metav1.ListOptions{LabelSelector: "owner=helm,name=" + service})
		if err == nil {
			for _, s := range secrets.Items {
				if strings.HasPrefix(s.Labels["status"], "pending-") {
					// Let the waiting pods exist, so the kill lands mid-wait.
					pods, _ := d.Cluster.Clientset.CoreV1().Pods(d.Project.Namespace).List(context.Background(),
						metav1.ListOptions{LabelSelector: testcluster.FailReadinessLabel + "=true"})
					if len(pods.Items) > 0 {
						return
					}
				}
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s never went pending", service)
}

// A user who may not write the namespace is told what is missing, before
// anything is written.
func TestPreflightListsMissingPermissions(t *testing.T) {
	d := setup(t)
	ctx := context.Background()
	ns := d.Project.Namespace
	cs := d.Cluster.Clientset
	if _, err := cs.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "reader"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	tok, err := cs.CoreV1().ServiceAccounts(ns).CreateToken(ctx, "reader", &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rc := cluster.RESTConfig()
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: reader, user: {token: %q}}]
contexts: [{name: reader, context: {cluster: c, user: reader, namespace: %s}}]
current-context: reader
`, rc.Host, tok.Status.Token, ns)
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := kube.Connect(ctx, kube.ConnectOptions{Kubeconfig: kubeconfig, Namespace: ns})
	if err != nil {
		t.Fatal(err)
	}
	reader, err := deploy.New(c, d.Project, d.Log)
	if err != nil {
		t.Fatal(err)
	}
	_, err = reader.Deploy(ctx, deploy.Options{Lock: holder("reader"), Wait: true})
	var pre *deploy.PreflightError
	if !errors.As(err, &pre) || !strings.Contains(err.Error(), "get/create/patch/delete services, serviceaccounts, configmaps, secrets, deployments.apps") || !strings.HasSuffix(err.Error(), "(namespace "+ns+")") {
		t.Fatalf("deploy as a reader: %v", err)
	}
	if deps, _ := cs.AppsV1().Deployments(ns).List(ctx, metav1.ListOptions{}); len(deps.Items) != 0 {
		t.Errorf("preflight failed but %d Deployments were written", len(deps.Items))
	}
}
