package lint

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/render"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

func project(t *testing.T) *config.Project {
	t.Helper()
	l, err := config.Load("../../msctl.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return l.Project
}

// projectDir makes a directory holding every service's source directory.
func projectDir(t *testing.T, p *config.Project, skip string) string {
	t.Helper()
	dir := t.TempDir()
	for _, s := range p.Services {
		if s.Name == skip {
			continue
		}
		if err := os.MkdirAll(filepath.Join(dir, s.Path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestBundledProjectIsClean(t *testing.T) {
	p := project(t)
	findings, err := Project(p, projectDir(t, p, ""))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range findings {
		if f.Severity != Info {
			t.Errorf("unexpected finding: %+v", f)
		}
	}
	if Failed(findings) {
		t.Error("Failed() on a clean project")
	}
}

func TestMissingServiceSource(t *testing.T) {
	p := project(t)
	findings, err := Project(p, projectDir(t, p, "payment"))
	if err != nil {
		t.Fatal(err)
	}
	want := Finding{Error, "service payment", "source directory services/payment does not exist"}
	if len(findings) == 0 || !containsFinding(findings, want) || !Failed(findings) {
		t.Fatalf("findings %+v lack %+v", findings, want)
	}
}

func TestRoutesToUndefinedSubsetsAndHosts(t *testing.T) {
	p := project(t)
	res, err := render.Render(p, render.Options{Services: []string{"order"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := checkRoutes(res); len(got) != 0 {
		t.Fatalf("rendered routes are inconsistent: %+v", got)
	}
	for _, o := range res.Objects {
		switch o.GetKind() {
		case "DestinationRule":
			if o.GetName() == "order" {
				_ = unstructured.SetNestedSlice(o.Object, []any{}, "spec", "subsets")
			} else {
				_ = unstructured.SetNestedField(o.Object, "elsewhere", "spec", "host")
			}
		case "VirtualService":
			_ = unstructured.SetNestedStringSlice(o.Object, []string{"mesh", "nowhere"}, "spec", "gateways")
		}
	}
	got := checkRoutes(res)
	var messages []string
	for _, f := range got {
		messages = append(messages, f.Message)
	}
	all := strings.Join(messages, "\n")
	for _, want := range []string{`gateway "nowhere" is not defined`, `route mesh sends traffic to subset "stable" of order.shop.svc.cluster.local, which is not defined (have [])`,
		`route mesh sends traffic to host order-canary.shop.svc.cluster.local, which no DestinationRule defines`} {
		if !strings.Contains(all, want) {
			t.Errorf("findings lack %q:\n%s", want, all)
		}
	}
}

func containsFinding(fs []Finding, want Finding) bool {
	for _, f := range fs {
		if f == want {
			return true
		}
	}
	return false
}
