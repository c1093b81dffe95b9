package promtest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestMissingBinaryMessageSaysHowToInstall(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := findPrometheus()
	if err == nil || !strings.Contains(err.Error(), "make deps") || !strings.Contains(err.Error(), "prometheus package") {
		t.Fatalf("error %v, want one naming Debian's prometheus package and `make deps`", err)
	}
}

func TestScrapeConfig(t *testing.T) {
	got := string(scrapeConfig([]string{"127.0.0.1:1234", "[::1]:99"}))
	want := `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: promtest
    static_configs:
      - targets: ["127.0.0.1:1234", "[::1]:99"]
`
	if got != want {
		t.Errorf("config:\n%s\nwant:\n%s", got, want)
	}
}

// helperPIDFileEnv turns TestHelperServerOfKilledBinary into the helper of
// TestKilledTestBinaryLeavesNoServer.
const helperPIDFileEnv = "MSCTL_PROMTEST_HELPER_PIDFILE"

// TestHelperServerOfKilledBinary is a helper, not a test: run by
// TestKilledTestBinaryLeavesNoServer, it starts a server, writes the
// server's pid and waits to be killed. Run otherwise it does nothing.
func TestHelperServerOfKilledBinary(t *testing.T) {
	pidFile := os.Getenv(helperPIDFileEnv)
	if pidFile == "" {
		return
	}
	p := StartPrometheus(t)
	pid := strconv.Itoa(p.server.cmd.Process.Pid)
	if err := os.WriteFile(pidFile+".tmp", []byte(pid), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(pidFile+".tmp", pidFile); err != nil {
		t.Fatal(err)
	}
	select {}
}

// A test binary killed outright (a CI timeout, kill -9) must take its
// server with it.
func TestKilledTestBinaryLeavesNoServer(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "server.pid")
	helper := exec.Command(os.Args[0], "-test.run=^TestHelperServerOfKilledBinary$", "-test.timeout=2m")
	// The helper's temporary files, which it cannot remove, go under dir.
	helper.Env = append(os.Environ(), helperPIDFileEnv+"="+pidFile, "TMPDIR="+dir)
	var out bytes.Buffer
	helper.Stdout = &out
	helper.Stderr = &out
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- helper.Wait() }()

	var pid int
	deadline := time.After(time.Minute)
	for pid == 0 {
		select {
		case err := <-exited:
			t.Fatalf("the helper exited (%v) before starting a server:\n%s", err, out.String())
		case <-deadline:
			_ = helper.Process.Kill()
			t.Fatalf("the helper started no server within a minute:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
		if data, err := os.ReadFile(pidFile); err == nil {
			if pid, err = strconv.Atoi(string(data)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !running(pid) {
		t.Fatalf("server %d is not running while its test binary is", pid)
	}
	_ = helper.Process.Signal(syscall.SIGKILL)
	<-exited

	for end := time.Now().Add(5 * time.Second); running(pid); {
		if time.Now().After(end) {
			_ = syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("server %d still runs 5 s after its test binary was killed", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// running reports whether pid is a live process, not a zombie awaiting its
// reaper.
func running(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	return len(fields) > 0 && fields[0] != "Z" && fields[0] != "X"
}
