// Package registrytest starts Debian's docker-registry (the reference
// distribution registry) on a free loopback port for a test, with its own
// storage directory. It fails the test, loudly, when the binary is
// missing: build tests run against a real registry or not at all.
package registrytest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
)

// Binary is where hack/deps.sh installs the registry.
const Binary = "/usr/bin/docker-registry"

// Start runs a registry until the test ends and returns its host:port.
func Start(t testing.TB) string {
	t.Helper()
	testenv.Integration(t, "an OCI registry")
	if _, err := os.Stat(Binary); err != nil {
		t.Fatalf("registrytest: %s not found (%v): run hack/deps.sh to install docker-registry", Binary, err)
	}
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	config := fmt.Sprintf(`version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
`, filepath.Join(dir, "storage"), addr)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd := exec.Command(Binary, "serve", cfgPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	logText := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	if err := cmd.Start(); err != nil {
		t.Fatalf("registrytest: start %s: %v", Binary, err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return addr
			}
		}
		select {
		case <-exited:
			t.Fatalf("registrytest: docker-registry exited: %s", logText())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("registrytest: docker-registry not ready on %s after 20s: %v\n%s", addr, err, logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
}
