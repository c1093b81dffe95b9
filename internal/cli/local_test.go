package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/local"
	"github.com/msctl/msctl/internal/testenv"
)

// runAsMsctl makes this test binary msctl itself when set: up -d re-runs
// its own executable as the supervisor.
const runAsMsctl = "MSCTL_CLI_TEST_RUN_AS_MSCTL"

func TestMain(m *testing.M) {
	if os.Getenv(runAsMsctl) != "" {
		os.Exit(Main())
	}
	os.Exit(m.Run())
}

// localProject is a project directory holding the bundled project's
// msctl.yaml and a link to its services, with its own run directory.
func localProject(t *testing.T, edit func(string) string) string {
	t.Helper()
	testenv.Integration(t, "the services built and run by msctl up")
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(repo, "msctl.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	content := string(data)
	if edit != nil {
		content = edit(content)
	}
	dir := projectDir(t, content)
	if err := os.Symlink(filepath.Join(repo, "services"), filepath.Join(dir, "services")); err != nil {
		t.Fatal(err)
	}
	t.Setenv(runAsMsctl, "1")
	return dir
}

// freePortBase finds a base whose whole layout is free, below the
// ephemeral range.
func freePortBase(t *testing.T) int {
	t.Helper()
	for range 50 {
		base := 20000 + 100*rand.IntN(120)
		free := true
		for p := base; p < base+60 && free; p++ {
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				free = false
				continue
			}
			ln.Close()
		}
		if free {
			return base
		}
	}
	t.Fatal("no free port base")
	return 0
}

func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	return !strings.HasPrefix(s[strings.LastIndexByte(s, ')')+2:], "Z")
}

// up -d, up again, status, logs, a kill -9 of the supervisor, then down:
// every process it recorded is gone from the process table.
func TestUpDetachedStatusLogsDown(t *testing.T) {
	dir := localProject(t, nil)
	base := strconv.Itoa(freePortBase(t))
	r := run(t, dir, false, "up", "-d", "--port-base", base, "-o", "json")
	if r.code != 0 {
		t.Fatalf("up -d: exit %d\n%s", r.code, r.stderr)
	}
	var st local.Status
	if err := json.Unmarshal(r.stdoutBytes, &st); err != nil {
		t.Fatalf("up -d -o json: %v\n%s", err, r.stdout)
	}
	var pids []int
	for _, s := range st.Services {
		if s.Stable == nil || !s.Stable.Ready {
			t.Fatalf("%s not ready: %+v", s.Name, s.Stable)
		}
		pids = append(pids, s.Stable.PID)
	}
	if len(pids) != 4 || st.GatewayURL != "http://127.0.0.1:"+base || st.RunDir != filepath.Join(dir, ".msctl", "run") {
		t.Fatalf("status: %+v", st)
	}

	r = run(t, dir, false, "up", "-d", "--port-base", base)
	if r.code != 1 || !strings.Contains(r.stderr, "already running in") || strings.Count(r.stderr, "\n") != 1 || r.stdout != "" {
		t.Errorf("up twice: %+v", r)
	}
	r = run(t, dir, false, "status", "--local")
	if r.code != 0 || !strings.Contains(r.stdout, "payment     stable") || !strings.Contains(r.stdout, "gateway:  http://127.0.0.1:"+base) {
		t.Errorf("status --local: %+v", r)
	}
	r = run(t, dir, false, "logs", "payment")
	if r.code != 0 || !strings.Contains(r.stdout, `"msg":"serving"`) {
		t.Errorf("logs payment: %+v", r)
	}

	if err := syscall.Kill(st.Supervisor, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(5 * time.Second); running(st.Supervisor); {
		if time.Now().After(deadline) {
			t.Fatal("the supervisor survived kill -9")
		}
		time.Sleep(10 * time.Millisecond)
	}
	r = run(t, dir, false, "status", "--local")
	if r.code != 2 || !strings.Contains(r.stderr, "is gone") {
		t.Errorf("status after the supervisor's kill -9: %+v", r)
	}
	r = run(t, dir, false, "down", "--grace", "3s")
	if r.code != 0 || !strings.Contains(r.stdout, "stopped 4 processes") {
		t.Errorf("down: %+v", r)
	}
	for _, pid := range append(pids, st.Supervisor) {
		if running(pid) {
			t.Errorf("pid %d still in the process table after down", pid)
		}
	}
	r = run(t, dir, false, "down")
	if r.code != 2 || !strings.Contains(r.stderr, "nothing runs in") {
		t.Errorf("down twice: %+v", r)
	}

	// With binaries built: a taken port is named before anything starts.
	ln, err := net.Listen("tcp", "127.0.0.1:"+base)
	if err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, false, "up", "-d", "--no-build", "--port-base", base)
	ln.Close()
	if r.code != 2 || r.stderr != fmt.Sprintf("msctl: port %s (gateway) is taken; free it or choose another base with --port-base\n", base) {
		t.Errorf("taken port: %+v", r)
	}
	r = run(t, dir, false, "down", "--purge")
	if r.code != 0 {
		t.Errorf("down --purge: %+v", r)
	}
}

func TestUpNamesAServiceThatExitsAtStart(t *testing.T) {
	dir := localProject(t, func(s string) string {
		return strings.Replace(s, "secret: payment-db\n    replicas: 2\n    env:\n", "secret: payment-db\n    replicas: 2\n    env:\n      FAULT_ERROR_RATE: \"7\"\n", 1)
	})
	r := run(t, dir, false, "up", "-d", "--port-base", strconv.Itoa(freePortBase(t)))
	if r.code != 1 || !strings.Contains(r.stderr, "\nmsctl: payment exited at start (exit status 2)\n") ||
		!strings.Contains(r.stderr, "--- last lines of "+filepath.Join(dir, ".msctl", "run", "logs", "payment.log")) ||
		!strings.Contains(r.stderr, "FAULT_ERROR_RATE") || r.stdout != "" {
		t.Fatalf("up with a failing service: %+v", r)
	}
	if _, err := os.Stat(filepath.Join(dir, ".msctl", "run", "supervisor.json")); !os.IsNotExist(err) {
		t.Errorf("a supervisor record was left: %v", err)
	}
}

// In the foreground, up shows the services' log lines as JSON with a
// service field when stderr is not a terminal, and Ctrl-C stops everything.
func TestUpInTheForegroundStopsOnCtrlC(t *testing.T) {
	testForegroundStopsOn(t, os.Interrupt)
}

// A closed terminal (SIGHUP) stops everything as Ctrl-C does.
func TestUpInTheForegroundStopsOnHangup(t *testing.T) {
	testForegroundStopsOn(t, syscall.SIGHUP)
}

func testForegroundStopsOn(t *testing.T, sig os.Signal) {
	dir := localProject(t, nil)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "up", "--port-base", strconv.Itoa(freePortBase(t)), "-o", "json")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var st local.Status
	if err := json.NewDecoder(stdout).Decode(&st); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("no status on stdout: %v\n%s", err, stderr.String())
	}
	time.Sleep(500 * time.Millisecond) // a poll of the logs
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("up after %v: %v\n%s", sig, err, stderr.String())
	}
	for _, s := range st.Services {
		if running(s.Stable.PID) {
			t.Errorf("%s (pid %d) still runs after %v", s.Name, s.Stable.PID, sig)
		}
	}
	seen := map[string]bool{}
	for line := range strings.SplitSeq(strings.TrimSpace(stderr.String()), "\n") {
		var l struct{ Service, Msg string }
		if json.Unmarshal([]byte(line), &l) != nil || l.Service == "" {
			t.Errorf("not a JSON line with a service field: %q", line)
			continue
		}
		seen[l.Service+" "+l.Msg] = true
	}
	for _, want := range []string{"order serving", "payment shutting down: readiness off, draining"} {
		if !seen[want] {
			t.Errorf("no %q line in the output:\n%s", want, stderr.String())
		}
	}
}

// Ctrl-C while up -d waits for its supervisor stops the supervisor and
// every service it had started, rather than leaving them running.
func TestUpDetachedInterruptedLeavesNothing(t *testing.T) {
	dir := localProject(t, nil)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "up", "-d", "--port-base", strconv.Itoa(freePortBase(t)))
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Once the supervisor has started a service, interrupt up -d.
	record := filepath.Join(dir, ".msctl", "run", "supervisor.json")
	pids := map[int]bool{}
	for deadline := time.Now().Add(2 * time.Minute); len(pids) < 2; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("no service recorded\n%s", stderr.String())
		}
		var r struct {
			Supervisor struct{ PID int }
			Services   []local.ServiceStatus
		}
		if b, err := os.ReadFile(record); err == nil && json.Unmarshal(b, &r) == nil {
			for _, s := range r.Services {
				if s.Stable != nil && s.Stable.PID > 0 {
					pids[r.Supervisor.PID], pids[s.Stable.PID] = true, true
				}
			}
		}
	}
	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err == nil {
		run(t, dir, false, "down")
		t.Fatal("up -d was ready before the interrupt reached it")
	}
	for pid := range pids {
		if running(pid) {
			t.Errorf("pid %d still runs after up -d was interrupted\n%s", pid, stderr.String())
		}
	}
}
