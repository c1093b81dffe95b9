package render

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// helmVersion is the Helm CLI the chart is checked against.
const helmVersion = "v4.3.1"

// helmCLI returns the pinned helm binary, installing it into msctl's tool
// cache on first use (as make does for its tools).
func helmCLI(t *testing.T) string {
	t.Helper()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "msctl", "tools", "helm-"+helmVersion)
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("installing helm %s into %s", helmVersion, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "helm.sh/helm/v4/cmd/helm@"+helmVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing helm %s: %v\n%s", helmVersion, err, out)
	}
	return bin
}

// `helm template` of the chart directory, given the values msctl derives,
// must produce the objects msctl renders in-process.
func TestHelmCLIRendersTheSameObjects(t *testing.T) {
	helm := helmCLI(t)
	p := bundled(t)
	res := mustRender(t, p, Options{APIVersions: monitoringAPIs, ImageTag: "v9"})
	for _, s := range p.Services {
		t.Run(s.Name, func(t *testing.T) {
			values, err := yaml.Marshal(ChartValues(p, &s, "v9"))
			if err != nil {
				t.Fatal(err)
			}
			valuesFile := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(valuesFile, values, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"template", s.Name, "../../manifests/charts/service", "--namespace", p.Namespace, "-f", valuesFile}
			for _, api := range monitoringAPIs {
				args = append(args, "--api-versions", api)
			}
			var stderr bytes.Buffer
			cmd := exec.Command(helm, args...)
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("helm %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
			}
			fromHelm := map[string]map[string]any{}
			for _, doc := range strings.Split(string(out), "\n---\n") {
				js, err := yaml.YAMLToJSON([]byte(doc))
				if err != nil {
					t.Fatal(err)
				}
				if string(js) == "null" {
					continue
				}
				u := &unstructured.Unstructured{}
				if err := u.UnmarshalJSON(js); err != nil {
					t.Fatal(err)
				}
				fromHelm[u.GetKind()+"/"+u.GetName()] = u.Object
			}
			var count int
			for _, o := range res.Objects {
				if o.Service != s.Name || o.Source != SourceChart {
					continue
				}
				count++
				key := o.GetKind() + "/" + o.GetName()
				h, ok := fromHelm[key]
				if !ok {
					t.Errorf("helm did not render %s", key)
					continue
				}
				if !reflect.DeepEqual(h, o.Object) {
					a, _ := yaml.Marshal(h)
					b, _ := yaml.Marshal(o.Object)
					t.Errorf("%s differs\nhelm:\n%s\nmsctl:\n%s", key, a, b)
				}
			}
			if count != len(fromHelm) || count == 0 {
				t.Errorf("msctl rendered %d chart objects, helm %d", count, len(fromHelm))
			}
		})
	}
}
