package canarykube

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/canarystate"
)

// A canary in progress keeps the plan it started with: while the project
// file's canary block is broken, status and abort still work (the driver
// needs no plan from the file), and only a new canary is refused, exit 2,
// naming the key.
func TestABrokenCanaryBlockStopsOnlyANewCanary(t *testing.T) {
	e := newEnv(t, steps(10, 100))
	project := e.projectFile()
	if out, err := e.msctl(project, "canary", "start", "user", "--tag", "v2").CombinedOutput(); err != nil {
		t.Fatalf("start: %v\n%s", err, out)
	}
	if w := e.weight(); w != 10 {
		t.Fatalf("weight %d after start, want 10", w)
	}
	src, err := os.ReadFile(project)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(src), "steps: [10, 100]", "steps: [150]", 1)
	if broken == string(src) {
		t.Fatalf("the project file has no steps to break:\n%s", src)
	}
	if err := os.WriteFile(project, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"canary", "status", "user"}, {"canary", "explain", "user"}, {"canary", "abort", "user"}} {
		if out, err := e.msctl(project, args...).CombinedOutput(); err != nil {
			t.Fatalf("%v with a broken canary block: %v\n%s", args, err, out)
		}
	}
	st, _, err := e.d.StateStore("user").Load(context.Background())
	if err != nil || st.Phase != canarystate.Aborted || e.weight() != 0 || !e.canaryReleaseGone() {
		t.Fatalf("after the abort: %v, phase %s, weight %d", err, st.Phase, e.weight())
	}
	out, err := e.msctl(project, "canary", "start", "user", "--tag", "v3").CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(string(out), "canary.steps[0]") {
		t.Fatalf("a new canary with a broken canary block: %v\n%s", err, out)
	}
}
