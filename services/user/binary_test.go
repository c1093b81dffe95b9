package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// build compiles the service binary once per test run.
func build(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "user")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freePort picks a port for the binary; the tiny window before it binds
// the port again is acceptable on loopback in tests.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func environ(m map[string]string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	for k, v := range m {
		env = append(env, k+"="+v)
	}
	return env
}

// TestBinary runs the built service: flags, bad config, and a SIGTERM with
// a request in flight, which must complete while readiness is already off.
func TestBinary(t *testing.T) {
	bin := build(t)

	t.Run("--version", func(t *testing.T) {
		out, err := exec.Command(bin, "--version").Output()
		if err != nil || !strings.HasPrefix(string(out), "user ") {
			t.Fatalf("%q, %v", out, err)
		}
	})

	t.Run("bad config stops start-up with one line", func(t *testing.T) {
		cases := map[string]string{
			"FAULT_ERROR_RATE": "2",
			"DATABASE_URL":     "mysql://root:hunter2@db/users",
			"SHUTDOWN_GRACE":   "forever",
		}
		for k, v := range cases {
			cmd := exec.Command(bin)
			cmd.Env = environ(map[string]string{k: v})
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			err := cmd.Run()
			exit, _ := err.(*exec.ExitError)
			if exit == nil || exit.ExitCode() != 2 {
				t.Fatalf("%s=%s: exit %v, want 2", k, v, err)
			}
			msg := stderr.String()
			if strings.Count(msg, "\n") != 1 || !strings.Contains(msg, k) || strings.Contains(msg, "hunter2") {
				t.Fatalf("%s=%s: stderr %q, want one line naming %s without secrets", k, v, msg, k)
			}
		}
	})

	t.Run("SIGTERM drains the request in flight", func(t *testing.T) {
		c := testCreds(t)
		admin := freePort(t)
		env := map[string]string{
			"GRPC_ADDR": freePort(t), "HTTP_ADDR": freePort(t), "ADMIN_ADDR": admin,
			"DATABASE_URL": "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "users.db")),
			// Every call takes 1.5s, so one is surely in flight at SIGTERM;
			// readiness stays observable for SHUTDOWN_DELAY after it.
			"FAULT_DELAY": "1500ms", "SHUTDOWN_DELAY": "500ms", "SHUTDOWN_GRACE": "10s",
			"READINESS_INTERVAL": "200ms", "READINESS_TIMEOUT": "100ms",
		}
		maps.Copy(env, c.env)
		cmd := exec.Command(bin)
		cmd.Env = environ(env)
		var logs bytes.Buffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			if t.Failed() {
				t.Logf("service log:\n%s", logs.String())
			}
		})

		healthCheck := func() int {
			hc := exec.Command(bin, "--health-check")
			hc.Env = environ(map[string]string{"ADMIN_ADDR": admin})
			err := hc.Run()
			if exit, ok := err.(*exec.ExitError); ok {
				return exit.ExitCode()
			}
			if err != nil {
				t.Fatal(err)
			}
			return 0
		}
		deadline := time.Now().Add(20 * time.Second)
		for healthCheck() != 0 {
			if time.Now().After(deadline) {
				t.Fatal("--health-check never reported ready")
			}
			time.Sleep(100 * time.Millisecond)
		}

		conn, err := grpc.NewClient(env["GRPC_ADDR"], grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		inflight := make(chan error, 1)
		started := time.Now()
		go func() {
			_, err := userv1.NewUserServiceClient(conn).GetUser(asAdmin(), &userv1.GetUserRequest{Id: "01900000-0000-7000-8000-000000000000"})
			inflight <- err
		}()
		time.Sleep(300 * time.Millisecond)
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
		if code := readyCode(admin); code != http.StatusServiceUnavailable {
			t.Fatalf("readiness during drain: %d, want 503", code)
		}
		if got := healthCheck(); got != 1 {
			t.Fatalf("--health-check during drain exited %d, want 1", got)
		}

		// The in-flight call finishes normally (NotFound is its real answer)
		// instead of being cut off.
		if err := <-inflight; status.Code(err) != codes.NotFound {
			t.Fatalf("in-flight call: %v, want NotFound", err)
		}
		if took := time.Since(started); took < 1500*time.Millisecond {
			t.Fatalf("in-flight call took %s, shorter than the injected delay", took)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("exit after SIGTERM: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("did not exit within the grace period")
		}
		if !strings.Contains(logs.String(), `"msg":"stopped","service":"user"`) {
			t.Fatal("no clean stop in the log")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := userv1.NewUserServiceClient(conn).GetUser(ctx, &userv1.GetUserRequest{Id: "x"}); status.Code(err) != codes.Unavailable && status.Code(err) != codes.DeadlineExceeded {
			t.Fatalf("call after exit: %v", err)
		}
	})
}

func readyCode(admin string) int {
	resp, err := http.Get(fmt.Sprintf("http://%s/health/ready", admin))
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
