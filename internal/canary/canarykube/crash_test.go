package canarykube

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/canary"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/promtest"
	"helm.sh/helm/v4/pkg/action"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
)

// projectFile writes the test's project as msctl.yaml, so the msctl binary
// runs the same canary as the library.
func (e *env) projectFile() string {
	e.t.Helper()
	p := e.d.Project
	var steps []string
	for _, s := range p.Canary.Steps {
		steps = append(steps, fmt.Sprint(s.Weight))
	}
	yaml := fmt.Sprintf(`apiVersion: msctl.dev/v1alpha1
kind: Project
name: %s
namespace: %s
registry: localhost:5000
prometheus:
  address: %s
canary:
  steps: [%s]
  interval: %s
  thresholds:
    maxP95Latency: 500ms
  analysis:
    minRequests: 10
services:
  - name: user
    path: services/user
`, p.Name, p.Namespace, e.prom.Addr(), strings.Join(steps, ", "), interval)
	path := filepath.Join(e.t.TempDir(), "msctl.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		e.t.Fatal(err)
	}
	return path
}

func (e *env) msctl(project string, args ...string) *exec.Cmd {
	cmd := exec.Command(cluster.Msctl(e.t), append([]string{"--config", project, "--kubeconfig", cluster.Kubeconfig()}, args...)...)
	cmd.Env = append(os.Environ(), "MSCTL_HOLDER=crash-test")
	return cmd
}

// releases lists the namespace's Helm releases.
func (e *env) releases() []string {
	e.t.Helper()
	cfg := action.NewConfiguration()
	if err := cfg.Init(e.d.Cluster.Getter, e.ns, "secret"); err != nil {
		e.t.Fatal(err)
	}
	list, err := action.NewList(cfg).Run()
	if err != nil {
		e.t.Fatal(err)
	}
	var names []string
	for _, r := range list {
		if rel, ok := r.(*releasev1.Release); ok {
			names = append(names, rel.Name)
		}
	}
	return names
}

// A driver killed with SIGKILL anywhere (while the canary's release is
// installed, at a step boundary, mid-analysis, while the stable is
// upgraded) is resumed by `msctl canary run`, and the canary ends as it
// would have: promoted, with no duplicate release and never more traffic
// on the canary than the step the state had reached.
func TestKilledDriverConverges(t *testing.T) {
	e := newEnv(t, steps(25, 50, 100))
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	project := e.projectFile()
	// Nothing to act on yet: bad input, one line, exit 2.
	for _, args := range [][]string{{"canary", "promote", "user"}, {"canary", "run", "user"}, {"canary", "explain", "user"}} {
		out, err := e.msctl(project, args...).CombinedOutput()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || strings.Count(string(out), "\n") != 1 {
			t.Errorf("%v with no canary: %v\n%s", args, err, out)
		}
	}
	for i, kill := range []struct {
		name string
		// at is the event after which the driver is killed, after.
		at    func(ev canary.Event) bool
		after time.Duration
	}{
		{"while the canary's release installs", func(ev canary.Event) bool { return ev.Type == "phase" && strings.Contains(ev.Message, "started") }, 200 * time.Millisecond},
		{"at the first step boundary", func(ev canary.Event) bool { return ev.Type == "traffic" }, 0},
		{"mid-analysis", func(ev canary.Event) bool { return ev.Type == "check" }, 0},
		{"at the second step", func(ev canary.Event) bool { return ev.Type == "step" && ev.Step == 1 }, 0},
		{"while the stable is upgraded", func(ev canary.Event) bool { return ev.Type == "phase" && strings.Contains(ev.Message, "promoting") }, 300 * time.Millisecond},
	} {
		tag := fmt.Sprintf("v%d", i+2)
		t.Run(kill.name, func(t *testing.T) {
			cmd := e.msctl(project, "canary", "run", "user", "--tag", tag, "--events", "-", "-q")
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			killed := false
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				var ev canary.Event
				if json.Unmarshal(sc.Bytes(), &ev) != nil {
					continue
				}
				if kill.at(ev) {
					time.Sleep(kill.after)
					_ = cmd.Process.Signal(syscall.SIGKILL)
					killed = true
					break
				}
			}
			_ = cmd.Wait()
			if !killed {
				t.Fatalf("the run ended before the kill point")
			}
			st, _, err := e.d.StateStore("user").Load(context.Background())
			if err != nil || st == nil {
				t.Fatalf("state after the kill: %v", err)
			}
			// The weight reached is the state's step's, whatever the driver
			// had written of its traffic when it died.
			allowed := 0
			for i := 0; i <= st.Step && i < len(st.Steps); i++ {
				if st.Steps[i].Kind == config.StepWeight {
					allowed = st.Steps[i].Weight
				}
			}
			if w := e.weight(); w > allowed {
				t.Errorf("the VirtualService sends %d%% to the canary, above the %d%% of step %d the state reached", w, allowed, st.Step+1)
			}
			// A second driver while the first's lock may still be held by a
			// dead process of this machine: taken over at once.
			out, err := e.msctl(project, "canary", "run", "user", "-o", "json").CombinedOutput()
			if err != nil {
				t.Fatalf("rerun: %v\n%s", err, out)
			}
			st, _, _ = e.d.StateStore("user").Load(context.Background())
			img, _ := e.stable()
			if st.Phase != canarystate.Succeeded || img != "localhost:5000/user:"+tag || !e.canaryReleaseGone() || e.weight() != 0 {
				t.Errorf("after the rerun: phase %s (%s), stable %s, weight %d", st.Phase, st.Reason, img, e.weight())
			}
			if rels := e.releases(); strings.Join(rels, ",") != "user" {
				t.Errorf("releases %v: want the stable's only", rels)
			}
		})
	}
}

// Two drivers at once: the second exits 7 naming the first.
func TestSecondDriverExitsSeven(t *testing.T) {
	e := newEnv(t, steps(10, 100))
	project := e.projectFile()
	first := e.msctl(project, "canary", "run", "user", "--tag", "v2", "--events", "-", "-q")
	stdout, _ := first.StdoutPipe()
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = first.Process.Kill(); _ = first.Wait() }()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && !strings.Contains(sc.Text(), `"type":"traffic"`) {
	}
	second := e.msctl(project, "canary", "run", "user")
	second.Env = append(os.Environ(), "MSCTL_HOLDER=second-job")
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 || !strings.Contains(string(out), `locked by "crash-test (`) {
		t.Fatalf("second driver: %v\n%s", err, out)
	}
}
