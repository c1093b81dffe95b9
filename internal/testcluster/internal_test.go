package testcluster

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strings"
	"testing"

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
