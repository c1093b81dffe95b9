package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// generateDir is a project directory that is also a Go module root.
func generateDir(t *testing.T) string {
	t.Helper()
	dir := projectDir(t, project)
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module example.com/shop\n\ngo 1.26\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestGenerateServiceBadInput(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad name", []string{"generate", "service", "Pay-ments"}, `msctl: service name "Pay-ments" is not valid`},
		{"declared service", []string{"generate", "service", "order"}, `msctl: service "order" is already declared in msctl.yaml`},
		{"no name", []string{"generate", "service"}, `msctl: accepts 1 arg(s), received 0 (see 'msctl generate service --help')`},
		{"two names", []string{"generate", "service", "a", "b"}, `msctl: accepts 1 arg(s), received 2`},
		{"unknown kind", []string{"generate", "servcie", "a"}, `msctl: unknown command "servcie" for "msctl generate"; did you mean service?`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := generateDir(t)
			before := listDir(t, dir)
			r := run(t, dir, false, tt.args...)
			if r.code != ExitUsage || !strings.HasPrefix(r.stderr, tt.wantErr) || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
				t.Errorf("got %+v, want exit %d and one line starting %q", r, ExitUsage, tt.wantErr)
			}
			if after := listDir(t, dir); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("files changed: %v -> %v", before, after)
			}
			if b, _ := os.ReadFile(filepath.Join(dir, "msctl.yaml")); string(b) != project {
				t.Errorf("msctl.yaml changed:\n%s", b)
			}
		})
	}
}

func TestGenerateService(t *testing.T) {
	dir := generateDir(t)
	r := run(t, dir, false, "generate", "service", "widget", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var out struct {
		Service, Dir, ProjectFile, Proto string
		Files, NextSteps                 []string
		ProtoGenerated                   bool
	}
	if err := json.Unmarshal(r.stdoutBytes, &out); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if out.Service != "widget" || out.Dir != "services/widget" || out.ProtoGenerated || len(out.Files) < 10 ||
		len(out.NextSteps) == 0 || !strings.HasPrefix(out.NextSteps[0], "make proto") {
		t.Fatalf("result %+v", out)
	}
	for _, f := range out.Files {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("listed but not written: %v", err)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "msctl.yaml")); !strings.HasPrefix(string(b), project) || !strings.Contains(string(b), "  - name: widget\n    path: services/widget\n") {
		t.Errorf("msctl.yaml:\n%s", b)
	}
	if r := run(t, dir, false, "config", "view", "widget"); r.code != 0 {
		t.Errorf("the updated project does not load: %+v", r)
	}

	// For people: the files, then what to do next.
	r = run(t, dir, false, "generate", "service", "gadget")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "Created service gadget in services/gadget:\n  services/gadget/") ||
		!strings.Contains(r.stdout, "Next steps:\n  make proto") || !strings.Contains(r.stdout, "go test ./services/gadget/...") {
		t.Errorf("table output: %+v", r)
	}
}

// A failing proto step is exit 1 and says what to run, after reporting
// the files, which stay written.
func TestGenerateServiceProtoFailure(t *testing.T) {
	dir := generateDir(t)
	if err := os.MkdirAll(filepath.Join(dir, "hack"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hack", "proto.sh"), []byte("echo 'proto: protoc exploded' >&2\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, false, "generate", "service", "widget")
	if r.code != ExitFailure || !strings.Contains(r.stdout, "make proto") ||
		!strings.Contains(r.stderr, "msctl: services/widget was written, but its Go code was not generated: hack/proto.sh failed (exit status 3): proto: protoc exploded; fix that, then run make proto") {
		t.Fatalf("got %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, "services", "widget", "main.go")); err != nil {
		t.Error(err)
	}
}

func TestGenerateServiceFlags(t *testing.T) {
	var got *GenerateServiceOptions
	cmd := NewCmdGenerateService(&Factory{}, func(o *GenerateServiceOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"catalog", "--skip-proto"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.Name != "catalog" || !got.SkipProto {
		t.Fatalf("options %+v", got)
	}
}
