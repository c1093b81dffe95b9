package generate

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/testenv"
)

// TestGeneratedServiceBuildsAndPassesItsTests is the acceptance test: a
// service generated into a copy of this module, with its Go code made by
// the real hack/proto.sh, must build, vet clean and pass its own tests,
// including the store contract on PostgreSQL. A missing protoc or
// PostgreSQL fails it (through proto.sh and pgtest): never a skip.
func TestGeneratedServiceBuildsAndPassesItsTests(t *testing.T) {
	testenv.Integration(t, "protoc and PostgreSQL")
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	for _, p := range []string{"go.mod", "go.sum", "msctl.yaml", "hack/proto.sh", "services/kit"} {
		copyPath(t, filepath.Join(repo, p), filepath.Join(root, p))
	}
	project := filepath.Join(root, "msctl.yaml")

	res, err := Service(root, project, "widget")
	if err != nil {
		t.Fatal(err)
	}
	if res.Proto != "services/widget/api/widgetv1/widget.proto" {
		t.Errorf("proto at %q", res.Proto)
	}
	loaded, err := config.Load(project, nil)
	if err != nil {
		t.Fatal(err)
	}
	if s := loaded.Project.Service("widget"); s == nil || s.Path != "services/widget" {
		t.Fatalf("msctl.yaml has no widget service at services/widget: %+v", s)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	var progress strings.Builder
	ran, err := Proto(ctx, root, &progress)
	if err != nil || !ran {
		t.Fatalf("proto generation: ran=%v, %v\n%s", ran, err, progress.String())
	}
	for _, f := range []string{"widget.pb.go", "widget_grpc.pb.go", "widget.pb.gw.go"} {
		if _, err := os.Stat(filepath.Join(root, "services/widget/api/widgetv1", f)); err != nil {
			t.Fatalf("proto.sh did not write %s: %v", f, err)
		}
	}

	for _, args := range [][]string{
		{"build", "./services/widget/..."},
		{"vet", "./services/widget/..."},
		{"test", "-count=1", "./services/widget/..."},
	} {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		// -mod=mod: the copied go.mod lists the service's imports as
		// indirect; the module cache already holds every one of them.
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod -buildvcs=false")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s in the generated module: %v\n%s", strings.Join(args, " "), err, out)
		}
		if args[0] == "test" {
			t.Logf("go test:\n%s", out)
			for _, pkg := range []string{"", "/internal/store", "/internal/api", "/internal/app"} {
				if line := "ok  \tgithub.com/msctl/msctl/services/widget" + pkg + "\t"; !strings.Contains(string(out), line) {
					t.Errorf("go test did not pass tests in services/widget%s:\n%s", pkg, out)
				}
			}
		}
	}
}

// copyPath copies a file or a directory tree.
func copyPath(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		dst := filepath.Join(to, rel)
		if d.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatal(err)
	}
}
