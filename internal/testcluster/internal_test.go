package testcluster

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

func TestStagingModules(t *testing.T) {
	gomod := `module k8s.io/kubernetes

go 1.26.0

require (
	k8s.io/api v0.0.0
	github.com/google/cel-go v0.26.0
)

replace github.com/example/fork => github.com/example/fork v1.2.3

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go // comment
	github.com/other => ../other
)

replace k8s.io/kms => ./staging/src/k8s.io/kms
`
	got := stagingModules([]byte(gomod))
	want := []string{"k8s.io/api", "k8s.io/client-go", "k8s.io/kms"}
	if !slices.Equal(got, want) {
		t.Errorf("stagingModules = %v, want %v", got, want)
	}
}

func TestExcludeFailReadiness(t *testing.T) {
	stage := []byte(`apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: pod-ready
spec:
  selector:
    matchExpressions:
    - key: '.status.phase'
      operator: 'In'
      values: ['Pending']
  next:
    statusTemplate: |
      phase: Running
`)
	out, err := excludeFailReadiness(stage)
	if err != nil {
		t.Fatal(err)
	}
	var got struct {
		Spec struct {
			Selector struct {
				MatchExpressions []struct {
					Key, Operator string
					Values        []string
				} `json:"matchExpressions"`
			}
			Next struct {
				StatusTemplate string `json:"statusTemplate"`
			}
		}
	}
	if err := yaml.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	exprs := got.Spec.Selector.MatchExpressions
	if len(exprs) != 2 {
		t.Fatalf("matchExpressions %+v, want the original one plus the exclusion", exprs)
	}
	last := exprs[1]
	if last.Key != `.metadata.labels["msctl.dev/fail-readiness"]` || last.Operator != "NotIn" || !slices.Equal(last.Values, []string{"true"}) {
		t.Errorf("exclusion %+v", last)
	}
	if got.Spec.Next.StatusTemplate != "phase: Running\n" {
		t.Errorf("statusTemplate changed: %q", got.Spec.Next.StatusTemplate)
	}
}

func TestNamespacePrefix(t *testing.T) {
	for name, want := range map[string]string{
		"TestDeploy":                      "testdeploy-",
		"TestDeploy/rolls_back__on-fail":  "testdeploy-rolls-back-on-fail-",
		"Test/" + strings.Repeat("x", 80): "test-" + strings.Repeat("x", 35) + "-",
		"///":                             "test-",
	} {
		if got := namespacePrefix(name); got != want {
			t.Errorf("namespacePrefix(%q) = %q, want %q", name, got, want)
		}
	}
}

// TestVersionsMatchGoMod keeps the server and the CRDs in step with the
// client libraries: bumping k8s.io/client-go or istio.io/client-go in go.mod
// without updating versions.go fails here.
func TestVersionsMatchGoMod(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-json", "k8s.io/client-go", "istio.io/api").Output()
	if err != nil {
		t.Fatalf("go list -m: %v", err)
	}
	got := map[string]string{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for dec.More() {
		var m struct{ Path, Version string }
		if err := dec.Decode(&m); err != nil {
			t.Fatal(err)
		}
		got[m.Path] = m.Version
	}
	if got["k8s.io/client-go"] != StagingVersion {
		t.Errorf("go.mod has k8s.io/client-go %s; the test cluster runs Kubernetes %s (staging %s)", got["k8s.io/client-go"], KubernetesVersion, StagingVersion)
	}
	if got[modIstioAPI] != IstioAPIVersion {
		t.Errorf("go.mod has istio.io/api %s; the test cluster installs CRDs from %s", got[modIstioAPI], IstioAPIVersion)
	}
	if "v1."+strings.TrimPrefix(StagingVersion, "v0.") != KubernetesVersion {
		t.Errorf("StagingVersion %s does not match KubernetesVersion %s", StagingVersion, KubernetesVersion)
	}
}

func TestCacheEntry(t *testing.T) {
	root := t.TempDir()
	ctx := t.Context()

	// A failed fill leaves nothing that looks like an entry.
	_, err := cacheEntry(ctx, root, "k", io.Discard, func(ctx context.Context, dir string) error {
		if err := os.WriteFile(filepath.Join(dir, "half"), nil, 0o644); err != nil {
			return err
		}
		return errors.New("build failed")
	})
	if err == nil || err.Error() != "build failed" {
		t.Fatalf("err = %v, want the fill's error", err)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "k*")); len(left) != 1 || filepath.Base(left[0]) != "k.lock" {
		t.Fatalf("after a failed fill the cache holds %v, want only the lock file", left)
	}

	// A killed build's temporary is removed; concurrent callers fill once.
	if err := os.Mkdir(filepath.Join(root, "k.tmp-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	var fills atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			dir, err := cacheEntry(ctx, root, "k", io.Discard, func(ctx context.Context, dir string) error {
				fills.Add(1)
				time.Sleep(300 * time.Millisecond)
				return os.WriteFile(filepath.Join(dir, "bin"), []byte("ok"), 0o644)
			})
			if err != nil {
				t.Error(err)
				return
			}
			if b, err := os.ReadFile(filepath.Join(dir, "bin")); err != nil || string(b) != "ok" {
				t.Errorf("entry content %q, %v", b, err)
			}
		})
	}
	wg.Wait()
	if n := fills.Load(); n != 1 {
		t.Errorf("filled %d times, want 1", n)
	}
	if left, _ := filepath.Glob(filepath.Join(root, "k.tmp-*")); len(left) != 0 {
		t.Errorf("temporaries left: %v", left)
	}
}

// TestBuildErrorShowsGoOutput checks that a failed go command reports what
// go printed, so a failed first-run build explains itself.
func TestBuildErrorShowsGoOutput(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":  "module broken\n\ngo 1.26.0\n",
		"main.go": "package main\n\nfunc main() { undefinedThing() }\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := runGo(t.Context(), dir, "", "build", "-o", filepath.Join(dir, "out"), ".")
	if err == nil {
		t.Fatal("building a broken program succeeded")
	}
	if !strings.Contains(err.Error(), "undefined: undefinedThing") {
		t.Errorf("error does not show go's output: %v", err)
	}
}
