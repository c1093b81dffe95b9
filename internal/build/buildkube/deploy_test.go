package buildkube

import (
	"context"
	"encoding/json"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/build"
	"github.com/msctl/msctl/internal/build/registrytest"
	"github.com/msctl/msctl/internal/testcluster"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	testcluster.Main(m, &cluster, testcluster.Options{})
}

// TestDeployBuildDeploysByDigest runs msctl deploy --build on a fresh
// clone of this commit: the services are built, pushed to a real registry
// and deployed by digest into the project's namespace, which Pod Security
// admission holds to "restricted"; then a plain msctl deploy finds the
// same digests in the build record and changes nothing.
func TestDeployBuildDeploysByDigest(t *testing.T) {
	reg := registrytest.Start(t)
	src := filepath.Join(t.TempDir(), "src")
	head := git(t, "", "rev-parse", "HEAD")
	git(t, "", "clone", "-q", "--no-checkout", strings.TrimSpace(git(t, "", "rev-parse", "--show-toplevel")), src)
	git(t, src, "checkout", "-q", head)
	ns := cluster.Namespace(t)
	msctl := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(cluster.Msctl(t), append([]string{"--config", filepath.Join(src, "msctl.yaml"), "--kubeconfig", cluster.Kubeconfig(), "-n", ns}, args...)...)
		// A cache of its own, so the build links and pushes; Go's build
		// cache stays the developer's.
		goCache, _ := exec.Command("go", "env", "GOCACHE").Output()
		cmd.Env = append(os.Environ(), "MSCTL_REGISTRY="+reg, "XDG_CACHE_HOME="+t.TempDir(), "GOCACHE="+strings.TrimSpace(string(goCache)))
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("msctl %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return out
	}

	var results []struct{ Service, State, Image string }
	if err := json.Unmarshal(msctl("deploy", "--build", "--timeout", "2m", "-o", "json"), &results); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(src, build.RecordPath))
	if err != nil {
		t.Fatalf("build record: %v", err)
	}
	var record struct{ Builds []build.Record }
	if err := json.Unmarshal(data, &record); err != nil || len(record.Builds) != 1 || record.Builds[0].Commit != strings.TrimSpace(head) {
		t.Fatalf("build record %s: %v", data, err)
	}
	built := record.Builds[0].Images

	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	nsObj, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || nsObj.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Fatalf("namespace %s labels %v (%v), want Pod Security restricted enforced", ns, nsObj.Labels, err)
	}
	for _, r := range results {
		ref := built[r.Service]
		if r.State != "deployed" || !strings.Contains(ref, "@sha256:") || r.Image != ref {
			t.Errorf("%s: %+v, want deployed at the built %s", r.Service, r, ref)
		}
		dep, err := cs.AppsV1().Deployments(ns).Get(ctx, r.Service, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if img := dep.Spec.Template.Spec.Containers[0].Image; img != ref {
			t.Errorf("Deployment %s image %s, want %s", r.Service, img, ref)
		}
		// Admitted: pods exist and are ready under the restricted policy.
		if dep.Status.ReadyReplicas != *dep.Spec.Replicas {
			t.Errorf("Deployment %s: %d of %d ready", r.Service, dep.Status.ReadyReplicas, *dep.Spec.Replicas)
		}
		pods, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: metav1.FormatLabelSelector(dep.Spec.Selector)})
		if err != nil || len(pods.Items) == 0 {
			t.Errorf("%s: no pods (%v)", r.Service, err)
		}
	}
	if len(results) != 4 {
		t.Fatalf("%d services deployed, want 4", len(results))
	}

	// Without --tag, --image or --build: this commit's build, unchanged.
	if err := json.Unmarshal(msctl("deploy", "--timeout", "2m", "-o", "json"), &results); err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.State != "unchanged" || r.Image != built[r.Service] {
			t.Errorf("redeploy from the record: %+v, want unchanged at %s", r, built[r.Service])
		}
	}
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
