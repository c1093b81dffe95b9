package cli

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The scripts in completions/ ship in release archives; they must be what
// `msctl completion` prints today.
func TestCompletionScriptsHaveNotDrifted(t *testing.T) {
	files := map[string]string{
		"bash":       "msctl.bash",
		"zsh":        "_msctl",
		"fish":       "msctl.fish",
		"powershell": "msctl.ps1",
	}
	repo, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for shell, file := range files {
		t.Run(shell, func(t *testing.T) {
			r := run(t, projectDir(t, ""), false, "completion", shell)
			if r.code != 0 || r.stdout == "" {
				t.Fatalf("completion %s: %+v", shell, r)
			}
			committed, err := os.ReadFile(filepath.Join(repo, "completions", file))
			if err != nil {
				t.Fatalf("%v (run make completions)", err)
			}
			if string(committed) != r.stdout {
				t.Errorf("completions/%s is stale: run make completions and commit the result", file)
			}
		})
	}
}

// completions asks cobra's hidden __complete command, as the shells do.
func completions(t *testing.T, dir string, args ...string) []string {
	t.Helper()
	r := run(t, dir, false, append([]string{"__complete"}, args...)...)
	if r.code != 0 {
		t.Fatalf("__complete %v: exit %d: %s", args, r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	return lines[:len(lines)-1] // the last line is the directive
}

func TestServiceNamesComplete(t *testing.T) {
	dir := projectDir(t, project)
	if got := completions(t, dir, "config", "view", ""); !slices.Equal(got, []string{"user", "order"}) {
		t.Errorf("services: %v", got)
	}
	if got := completions(t, dir, "config", "view", "user", ""); !slices.Equal(got, []string{"order"}) {
		t.Errorf("services after user: %v", got)
	}
}

func TestContextsComplete(t *testing.T) {
	dir := projectDir(t, project)
	kubeconfig := filepath.Join(dir, "kubeconfig")
	const cfg = `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts:
- {name: staging, context: {cluster: c, user: u}}
- {name: prod, context: {cluster: c, user: u}}
`
	if err := os.WriteFile(kubeconfig, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := completions(t, dir, "version", "--kubeconfig", kubeconfig, "--context", ""); !slices.Equal(got, []string{"prod", "staging"}) {
		t.Errorf("contexts: %v", got)
	}
	if got := completions(t, dir, "version", "-o", ""); !slices.Equal(got, []string{"table", "json", "yaml"}) {
		t.Errorf("output formats: %v", got)
	}
}
