package generate

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
)

func TestValidName(t *testing.T) {
	cases := []struct {
		name string
		ok   bool
	}{
		{"widget", true},
		{"a", true},
		{"shop2", true},
		{strings.Repeat("a", 31), true},
		{"", false},
		{strings.Repeat("a", 32), false},
		{"Widget", false},
		{"2widget", false},
		{"my-service", false},
		{"my_service", false},
		{"wid get", false},
		{"widgét", false},
		{"../etc", false},
	}
	for _, tc := range cases {
		err := ValidName(tc.name)
		if tc.ok != (err == nil) || (err != nil && errkind.Of(err) != errkind.BadInput) {
			t.Errorf("ValidName(%q) = %v, want ok=%v (bad input when not)", tc.name, err, tc.ok)
		}
	}
}

const bundledStyle = `# The shop.
apiVersion: msctl.dev/v1alpha1
kind: Project
name: shop

services:
  - name: user
    path: services/user
    routes: [/api/v1/users]   # the public API

  - name: order
    path: services/order
    calls: [user]
`

const widgetEntry = `
  - name: widget
    path: services/widget
    routes: [/api/v1/widget]
    secret: widget-db
    env:
      LOG_LEVEL: info
`

func TestAddToProject(t *testing.T) {
	e := Entry("widget", "services/widget")
	cases := []struct {
		name string
		in   string
		// want is the exact output when the layout is kept as text;
		// otherwise the output is only parsed and checked.
		want string
		// keep are strings (comments, other keys) the output must still hold.
		keep []string
	}{
		{"services last: appended as text", bundledStyle, bundledStyle + widgetEntry, nil},
		{"no final newline", strings.TrimSuffix(bundledStyle, "\n"), bundledStyle + widgetEntry, nil},
		{
			"four-space indent kept",
			"apiVersion: msctl.dev/v1alpha1\nkind: Project\nname: shop\nservices:\n    -   name: user\n    -   name: order\n",
			"apiVersion: msctl.dev/v1alpha1\nkind: Project\nname: shop\nservices:\n    -   name: user\n    -   name: order\n" +
				"    -   name: widget\n        path: services/widget\n        routes: [/api/v1/widget]\n        secret: widget-db\n        env:\n          LOG_LEVEL: info\n",
			nil,
		},
		{
			"services not last: node round-trip",
			"# head comment\nname: shop\nservices:\n  - name: user # first\ncanary:\n  steps: [10, 100]\n",
			"",
			[]string{"# head comment", "# first", "steps: [10, 100]"},
		},
		{"flow sequence", "name: shop\nservices: [{name: user}]\n", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out, err := AddToProject("msctl.yaml", []byte(tc.in), e)
			if err != nil {
				t.Fatal(err)
			}
			if tc.want != "" && string(out) != tc.want {
				t.Fatalf("got:\n%s\nwant:\n%s", out, tc.want)
			}
			loaded, err := config.Parse("msctl.yaml", out, nil)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			s := loaded.Project.Service("widget")
			if s == nil || s.Path != "services/widget" || s.Secret != "widget-db" || !slices.Equal(s.Routes, []string{"/api/v1/widget"}) ||
				s.Env["LOG_LEVEL"] != "info" || loaded.Project.Service("user") == nil {
				t.Fatalf("services after the change: %+v\n%s", loaded.Project.Services, out)
			}
			for _, k := range tc.keep {
				if !strings.Contains(string(out), k) {
					t.Errorf("lost %q:\n%s", k, out)
				}
			}
		})
	}
}

func TestAddToProjectRefusesAConflictingRoute(t *testing.T) {
	in := "name: shop\nservices:\n  - name: user\n    routes: [/api/v1/widget]\n"
	_, err := AddToProject("msctl.yaml", []byte(in), Entry("widget", "services/widget"))
	var cerr *config.Error
	if !errors.As(err, &cerr) || !strings.Contains(err.Error(), `route "/api/v1/widget" is already service "user"'s`) {
		t.Fatalf("got %v, want a config error naming the taken route", err)
	}
}

// module is a minimal project root: go.mod, msctl.yaml and services/.
func module(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for p, content := range map[string]string{
		"go.mod":                  "module example.com/shop // the shop\n\ngo 1.26\n",
		"msctl.yaml":              bundledStyle,
		"services/user/main.go":   "package main\n",
		"services/kit/doc.go":     "package kit\n",
		"services/order/.keep":    "",
		"services/orphan/main.go": "package main\n",
	} {
		write(t, filepath.Join(root, p), content)
	}
	return root
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		t.Fatal(err)
	}
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

// TestServiceRefusesAndWritesNothing: every refusal is one line naming
// the problem, and leaves msctl.yaml and services/ exactly as they were.
func TestServiceRefusesAndWritesNothing(t *testing.T) {
	cases := []struct {
		name, service, want string
		edit                func(root string)
	}{
		{"bad name", "My-Service", `service name "My-Service" is not valid`, nil},
		{"declared in msctl.yaml", "order", `service "order" is already declared in`, nil},
		{"directory exists", "orphan", "services/orphan already exists", nil},
		{"kit directory", "kit", "services/kit already exists", nil},
		{"no go.mod", "widget", "go.mod not found", func(root string) { _ = os.Remove(filepath.Join(root, "go.mod")) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := module(t)
			if tc.edit != nil {
				tc.edit(root)
			}
			project := filepath.Join(root, "msctl.yaml")
			before := entries(t, filepath.Join(root, "services"))
			res, err := Service(root, project, tc.service)
			if res != nil || errkind.Of(err) != errkind.BadInput || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("got %v, %v; want one bad-input line containing %q", res, err, tc.want)
			}
			if b, _ := os.ReadFile(project); string(b) != bundledStyle {
				t.Errorf("msctl.yaml changed:\n%s", b)
			}
			if after := entries(t, filepath.Join(root, "services")); !slices.Equal(before, after) {
				t.Errorf("services/ changed: %v -> %v", before, after)
			}
		})
	}
}

func TestServiceWritesTheServiceThenTheProject(t *testing.T) {
	root := module(t)
	project := filepath.Join(root, "msctl.yaml")
	res, err := Service(root, project, "widget")
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(project); string(b) != bundledStyle+widgetEntry {
		t.Errorf("msctl.yaml:\n%s", b)
	}
	if res.Dir != "services/widget" || res.Proto != "services/widget/api/widgetv1/widget.proto" || !slices.IsSorted(res.Files) {
		t.Errorf("result %+v", res)
	}
	for _, want := range []string{
		"services/widget/main.go", "services/widget/e2e_test.go",
		"services/widget/api/widgetv1/widget.proto", "services/widget/api/widgetv1/widget_gateway.yaml",
		"services/widget/internal/store/contract_test.go", "services/widget/internal/store/migrations/postgres/00001_items.sql",
		"services/widget/internal/store/migrations/sqlite/00001_items.sql", "services/widget/internal/api/policy.go",
		"services/widget/internal/app/app.go",
	} {
		if !slices.Contains(res.Files, want) {
			t.Errorf("%s not in the result", want)
		}
	}
	for _, f := range res.Files {
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "{{") || strings.Contains(string(b), "<no value>") {
			t.Errorf("%s has an unexpanded template", f)
		}
		if strings.Contains(string(b), "github.com/msctl/msctl") {
			t.Errorf("%s names msctl's module, not example.com/shop from go.mod", f)
		}
		if f == "services/widget/main.go" && !strings.Contains(string(b), `"example.com/shop/services/widget/internal/app"`) {
			t.Errorf("main.go does not import its app through the module path from go.mod")
		}
	}
	if got := entries(t, filepath.Join(root, "services")); !slices.Equal(got, []string{"kit", "order", "orphan", "user", "widget"}) {
		t.Errorf("services/ holds %v (a temporary directory left behind?)", got)
	}
	ran, err := Proto(context.Background(), root, nil)
	if ran || err != nil {
		t.Errorf("Proto without hack/proto.sh: ran=%v, %v", ran, err)
	}
}

func TestProtoFailureSaysRunMakeProto(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "hack/proto.sh"), "echo installing >&2\necho 'proto: /usr/bin/protoc not found: run make deps' >&2\nexit 1\n")
	var progress strings.Builder
	ran, err := Proto(context.Background(), root, &progress)
	if !ran || err == nil || !strings.Contains(err.Error(), "protoc not found") || !strings.Contains(err.Error(), "run make proto") {
		t.Fatalf("ran=%v, %v; want the script's last line and make proto", ran, err)
	}
	if !strings.Contains(progress.String(), "installing") {
		t.Errorf("progress not streamed: %q", progress.String())
	}
}
