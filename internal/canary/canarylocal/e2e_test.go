package canarylocal

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/msctl/msctl/internal/canary"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/local"
	"github.com/msctl/msctl/internal/testenv"
)

// msctlBin is the msctl binary built from this module for the tests.
var msctlBin string

func TestMain(m *testing.M) {
	if testenv.SkipPackage("msctl and the services built, run by msctl up") {
		return
	}
	dir, err := os.MkdirTemp("", "msctl-canarylocal-")
	if err != nil {
		panic(err)
	}
	msctlBin = filepath.Join(dir, "msctl")
	if out, err := exec.Command("go", "build", "-o", msctlBin, "github.com/msctl/msctl/cmd/msctl").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building msctl: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// project is a project root in a temporary directory: the repository's
// msctl.yaml, and its services (and module files) linked in, so msctl up
// builds the services of this tree, with the run directory of the test.
type project struct {
	t      *testing.T
	root   string
	runDir string
}

func newProject(t *testing.T) *project {
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	repo := filepath.Join(wd, "..", "..", "..")
	root := t.TempDir()
	for _, name := range []string{"msctl.yaml", "go.mod", "go.sum", "services"} {
		if err := os.Symlink(filepath.Join(repo, name), filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return &project{t: t, root: root, runDir: local.RunDir(root)}
}

func (p *project) msctl(args ...string) *exec.Cmd {
	cmd := exec.Command(msctlBin, args...)
	cmd.Dir = p.root
	cmd.Env = append(os.Environ(), "MSCTL_HOLDER=canarylocal-test", "NO_COLOR=1")
	return cmd
}

// up starts the local runtime on free ports below the ephemeral range,
// and stops it when the test ends.
func (p *project) up() {
	p.t.Helper()
	var out []byte
	var err error
	for range 5 {
		base := 20000 + 100*rand.IntN(100)
		out, err = p.msctl("up", "-d", "--port-base", fmt.Sprint(base), "--timeout", "60s", "-o", "json").CombinedOutput()
		if err == nil {
			break
		}
		if !strings.Contains(string(out), "port") {
			break // not a taken port: a real failure
		}
	}
	if err != nil {
		p.t.Fatalf("msctl up -d: %v\n%s", err, out)
	}
	p.t.Cleanup(func() {
		if out, err := p.msctl("down").CombinedOutput(); err != nil {
			p.t.Errorf("msctl down: %v\n%s", err, out)
		}
	})
}

// run runs msctl and returns its exit code and combined output.
func (p *project) run(args ...string) (int, string) {
	p.t.Helper()
	out, err := p.msctl(args...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return exit.ExitCode(), string(out)
	case err != nil:
		p.t.Fatalf("msctl %v: %v", args, err)
	}
	return 0, string(out)
}

func (p *project) state() *canarystate.State {
	p.t.Helper()
	st, _, err := (&canarystate.FileStore{Dir: filepath.Join(p.runDir, "canary"), Service: "payment"}).Load(context.Background())
	if err != nil || st == nil {
		p.t.Fatalf("payment's canary state: %v, %v", st, err)
	}
	return st
}

// payment is payment's processes and split as the supervisor sees them.
func (p *project) payment() *local.ServiceStatus {
	p.t.Helper()
	c, err := local.Connect(p.runDir)
	if err != nil {
		p.t.Fatal(err)
	}
	st, err := c.Status(context.Background())
	if err != nil {
		p.t.Fatal(err)
	}
	return st.Service("payment")
}

// A canary of payment failing a fifth of its calls, or crash-looping, is
// rolled back by itself (exit 3), explain says why; a healthy one is promoted (exit 0)
// and its process becomes payment's stable.
func TestLocalCanaryRolledBackThenPromoted(t *testing.T) {
	p := newProject(t)
	p.up()

	// Thin traffic (issue 20): a few of the canary's requests an interval,
	// each caller's each response code a new series. Every one counts, so
	// 30% errors are rolled back, not held to Inconclusive.
	code, out := p.run("canary", "run", "payment", "--local", "--env", "FAULT_ERROR_RATE=0.3", "--load", "20", "--timeout", "2m", "-o", "json")
	if code != 3 {
		t.Fatalf("bad canary on thin traffic: exit %d, want 3 (rolled back)\n%s", code, out)
	}

	// A canary that crash-loops is unreachable most of the time: the
	// requests the gateway has no process for count as failed, as the
	// callers' sidecars count them in a cluster (issue 20).
	code, out = p.run("canary", "run", "payment", "--local", "--env", "FAULT_EXIT_AFTER=3s", "--load", "20", "--timeout", "2m", "-o", "json")
	if code != 3 || !strings.Contains(p.state().Reason, "success-rate") {
		t.Fatalf("crash-looping canary: exit %d, want 3 (rolled back)\n%s", code, out)
	}

	code, out = p.run("canary", "run", "payment", "--local", "--env", "FAULT_ERROR_RATE=0.2", "--load", "100", "--timeout", "2m", "-o", "json")
	if code != 3 {
		t.Fatalf("bad canary: exit %d, want 3 (rolled back)\n%s", code, out)
	}
	st := p.state()
	if st.Phase != canarystate.RolledBack || !strings.Contains(st.Reason, "success-rate") {
		t.Fatalf("bad canary: phase %s: %s", st.Phase, st.Reason)
	}
	if pay := p.payment(); pay.Canary != nil || pay.Traffic.Weight != 0 || pay.Stable.Spec.Env["FAULT_ERROR_RATE"] != "" {
		t.Fatalf("after the rollback: canary %+v, weight %d, stable %+v", pay.Canary, pay.Traffic.Weight, pay.Stable.Spec)
	}
	code, out = p.run("canary", "explain", "payment", "--local")
	if code != 0 || !strings.Contains(out, "FAIL") {
		t.Fatalf("explain: exit %d\n%s", code, out)
	}

	// Started at once: its checks read no request from before its start,
	// so the bad canary's requests do not count against it (issue 20).
	code, out = p.run("canary", "run", "payment", "--local", "--env", "FAULT_ERROR_RATE=0", "--load", "100", "--timeout", "2m", "-o", "json")
	if code != 0 {
		t.Fatalf("healthy canary: exit %d, want 0 (promoted)\n%s", code, out)
	}
	st = p.state()
	if pay := p.payment(); st.Phase != canarystate.Succeeded || pay.Canary != nil || pay.Stable.Spec.Env["FAULT_ERROR_RATE"] != "0" {
		t.Fatalf("after the promotion: phase %s (%s), canary %+v, stable %+v", st.Phase, st.Reason, pay.Canary, pay.Stable.Spec)
	}
}

// A driver killed with SIGKILL mid-canary leaves its state and its lock;
// the lock is free at once, a second driver meanwhile fails fast naming
// the first (exit 7), and a rerun resumes the canary to its promotion
// without a second canary process.
func TestLocalKilledDriverConverges(t *testing.T) {
	p := newProject(t)
	p.up()
	cmd := p.msctl("canary", "run", "payment", "--local", "--env", "FAULT_ERROR_RATE=0", "--load", "100", "--events", "-", "-q")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	reached := false
	for sc.Scan() {
		var ev canary.Event
		if json.Unmarshal(sc.Bytes(), &ev) == nil && ev.Type == "step" && ev.Step >= 1 {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatal("the driver ended before its second step")
	}
	second := p.msctl("canary", "run", "payment", "--local")
	second.Env = append(second.Env, "MSCTL_HOLDER=second-job")
	out, err := second.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 || !strings.Contains(string(out), `locked by "canarylocal-test (`) {
		t.Fatalf("second driver: %v\n%s", err, out)
	}

	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	st := p.state()
	if st.Phase != canarystate.Progressing || st.Driver == "" {
		t.Fatalf("after kill -9: phase %s, driver %q", st.Phase, st.Driver)
	}
	canaryPID := p.payment().Canary.PID

	code, out2 := p.run("canary", "run", "payment", "--local", "--load", "100", "--timeout", "2m")
	if code != 0 {
		t.Fatalf("rerun: exit %d\n%s", code, out2)
	}
	st = p.state()
	pay := p.payment()
	if st.Phase != canarystate.Succeeded || pay.Canary != nil || pay.Stable.PID != canaryPID || pay.Stable.Spec.Env["FAULT_ERROR_RATE"] != "0" {
		t.Fatalf("after the rerun: phase %s (%s), canary %+v, stable pid %d (the canary was %d), spec %+v",
			st.Phase, st.Reason, pay.Canary, pay.Stable.PID, canaryPID, pay.Stable.Spec)
	}
}
