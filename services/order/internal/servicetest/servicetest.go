// Package servicetest runs the order service's real dependencies (the
// user, inventory and payment binaries, built once per test binary) on
// loopback for the order service's tests. Their app packages are internal
// to them, so the binaries are the only way in. Test code only.
package servicetest

import (
	"context"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/host/hosttest"
)

// AdminKey is the API key for test setup and checks that every started
// service accepts (see hosttest.Keys); the order service calls the others
// with the downstream key from the same Secret.
const AdminKey = hosttest.AdminKey

var binDir string

// Main builds the binaries (the order service's own too, for tests that
// kill it), runs the tests and removes the binaries; call
// it from TestMain.
func Main(m *testing.M) {
	flag.Parse()
	if testing.Short() && os.Getenv("MSCTL_REQUIRE_INTEGRATION") != "1" {
		fmt.Println("skipped: builds and runs the four services: skipped under -short (run without -short, or set MSCTL_REQUIRE_INTEGRATION=1)")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "order-saga-bins")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"github.com/msctl/msctl/services/user", "github.com/msctl/msctl/services/inventory",
		"github.com/msctl/msctl/services/payment", "github.com/msctl/msctl/services/order")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building the services:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

// FreeAddr returns a loopback address nothing listens on now, on a port
// below Linux's ephemeral range (32768 and up): a service restarted on the
// same address must find it free, and an ephemeral port could meanwhile
// have gone to one of the machine's outgoing connections.
func FreeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000)))
		if err != nil {
			continue // taken: try another
		}
		addr := l.Addr().String()
		_ = l.Close()
		return addr
	}
	t.Fatal("no free loopback port between 20000 and 32000")
	return ""
}

// Service is one running dependency.
type Service struct {
	GRPC string
	// Admin serves health and /metrics.
	Admin string
	// Conn is a plain client connection to it (add AsAdmin to calls).
	Conn *grpc.ClientConn
	cmd  *exec.Cmd
}

// Kill stops the service with SIGKILL, as a crash would, and waits for it.
func (s *Service) Kill() {
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
}

// Start runs the named binary on loopback with its own SQLite
// database (env, added last, overrides any default, e.g. DATABASE_URL or
// GRPC_ADDR) and waits until it is ready; it is stopped when the test ends.
func Start(t testing.TB, name string, env ...string) *Service {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{
		"GRPC_ADDR": FreeAddr(t), "HTTP_ADDR": FreeAddr(t), "ADMIN_ADDR": FreeAddr(t),
		"DATABASE_URL":       "sqlite://" + filepath.ToSlash(filepath.Join(dir, name+".db")),
		"LOG_LEVEL":          "error",
		"READINESS_INTERVAL": "200ms", "READINESS_TIMEOUT": "150ms", "SHUTDOWN_GRACE": "2s",
	}
	maps.Copy(vars, hosttest.KeysEnv(t))
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	s := &Service{GRPC: vars["GRPC_ADDR"], Admin: vars["ADMIN_ADDR"]}
	admin := s.Admin
	s.cmd = exec.Command(filepath.Join(binDir, name))
	s.cmd.Env = os.Environ()
	for k, v := range vars {
		s.cmd.Env = append(s.cmd.Env, k+"="+v)
	}
	logf, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		t.Fatal(err)
	}
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait()
		_ = logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + admin + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("%s never became ready:\n%s", name, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if s.Conn, err = grpc.NewClient(s.GRPC, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Conn.Close() })
	return s
}

// AsAdmin is a context carrying the admin key, for test setup and checks.
func AsAdmin(ctx context.Context) context.Context {
	return metadata.AppendToOutgoingContext(ctx, auth.APIKeyKey, AdminKey)
}
