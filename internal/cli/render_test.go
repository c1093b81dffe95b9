package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// render --out leaves DIR holding exactly the last render: files an earlier
// render wrote for a service since removed are gone, and files msctl did
// not write stay.
func TestRenderOutRemovesStaleFiles(t *testing.T) {
	dir := projectDir(t, project)
	out := filepath.Join(dir, "manifests")
	if r := run(t, dir, false, "render", "--out", out); r.code != 0 {
		t.Fatalf("first render: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(out, "order-deployment.yaml")); err != nil {
		t.Fatalf("the first render wrote no order-deployment.yaml: %v", err)
	}
	mine := map[string]string{
		"kustomization.yaml": "resources: [user-deployment.yaml]\n",
		"order-extra.yaml":   "# my own notes on order\nkind: ConfigMap\n",
		"notes.txt":          renderedHeader,
		"short.yaml":         "#",
	}
	for name, content := range mine {
		if err := os.WriteFile(filepath.Join(out, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "msctl.yaml"), []byte(strings.Replace(project, "  - name: order\n    calls: [user]\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, false, "render", "--out", out); r.code != 0 {
		t.Fatalf("second render: %+v", r)
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		if strings.HasPrefix(e.Name(), "order-") && mine[e.Name()] == "" {
			t.Errorf("%s from the first render is still there", e.Name())
		}
	}
	for name, content := range mine {
		got, err := os.ReadFile(filepath.Join(out, name))
		if err != nil || string(got) != content {
			t.Errorf("%s, not msctl's, was changed or removed: %q, %v", name, got, err)
		}
	}
	for _, name := range []string{"user-deployment.yaml", "user-virtualservice.yaml", "shop-namespace.yaml"} {
		if !slices.Contains(names, name) {
			t.Errorf("%s was not written", name)
			continue
		}
		got, _ := os.ReadFile(filepath.Join(out, name))
		if !strings.HasPrefix(string(got), renderedHeader) {
			t.Errorf("%s does not start with the header: %.60q", name, got)
		}
	}
}

// A render of some services removes only those services' stale files: the
// other services' files, and another project's, stay.
func TestRenderOutOfSomeServicesKeepsTheOthers(t *testing.T) {
	dir := projectDir(t, project)
	out := filepath.Join(dir, "manifests")
	if r := run(t, dir, false, "render", "user", "--out", out); r.code != 0 {
		t.Fatalf("render user: %+v", r)
	}
	other := renderedHeader + "# project: other, service: user\nkind: ConfigMap\n"
	if err := os.WriteFile(filepath.Join(out, "other-configmap.yaml"), []byte(other), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, false, "render", "order", "--out", out); r.code != 0 {
		t.Fatalf("render order: %+v", r)
	}
	for _, name := range []string{"user-deployment.yaml", "order-deployment.yaml", "other-configmap.yaml"} {
		if _, err := os.Stat(filepath.Join(out, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}
