package renderkube

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/render"
	"github.com/msctl/msctl/internal/testcluster"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// `helm template` of the chart directory, given the values msctl derives,
// must produce the objects msctl renders in-process: by tag with plaintext
// scrapes, and by digest with mTLS scrapes.
func TestHelmCLIRendersTheSameObjects(t *testing.T) {
	helm := testcluster.HelmCLI(t)
	digest := map[string]any{"image": map[string]any{"digest": "sha256:" + strings.Repeat("ab", 32)}}
	for _, v := range []struct {
		name, scrape string
		overlays     []map[string]any
	}{
		{"tag", config.ScrapePlaintext, nil},
		{"digest-mtls", config.ScrapeMTLS, []map[string]any{digest}},
	} {
		t.Run(v.name, func(t *testing.T) {
			p := bundled(t)
			p.Prometheus.Scrape = v.scrape
			helmAgrees(t, helm, p, v.overlays)
		})
	}
}

func helmAgrees(t *testing.T, helm string, p *config.Project, overlays []map[string]any) {
	res := mustRender(t, p, render.Options{APIVersions: monitoringAPIs, ImageTag: "v9", Values: overlays})
	for _, s := range p.Services {
		t.Run(s.Name, func(t *testing.T) {
			values, err := yaml.Marshal(render.ServiceValues(p, &s, "v9", overlays))
			if err != nil {
				t.Fatal(err)
			}
			valuesFile := filepath.Join(t.TempDir(), "values.yaml")
			if err := os.WriteFile(valuesFile, values, 0o644); err != nil {
				t.Fatal(err)
			}
			args := []string{"template", s.Name, "../../../manifests/charts/service", "--namespace", p.Namespace, "-f", valuesFile}
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
				if o.Service != s.Name || o.Source != render.SourceChart {
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
