package cli

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// --ref checks out a revision's tree, not the working tree's.
func TestCheckoutOfARevision(t *testing.T) {
	repo := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.email=t@example.com", "-c", "user.name=t"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	write := func(name, content string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(repo, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(repo, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	git("init", "-q")
	write("services/payment/main.go", "v1")
	git("add", ".")
	git("commit", "-qm", "v1")
	git("tag", "v1")
	write("services/payment/main.go", "working tree")

	dir := t.TempDir()
	if err := checkout(context.Background(), repo, "v1", dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "services/payment/main.go")); err != nil || string(b) != "v1" {
		t.Fatalf("checked out %q, %v", b, err)
	}
	var usage *UsageError
	if err := checkout(context.Background(), repo, "v9", t.TempDir()); !errors.As(err, &usage) {
		t.Fatalf("unknown ref: %v, want a usage error", err)
	}
}
