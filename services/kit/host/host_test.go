package host

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gwruntime "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/storage"
)

func TestLoadConfig(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		err  string
	}{
		{"defaults", nil, ""},
		{"bad log level", map[string]string{"LOG_LEVEL": "loud"}, "LOG_LEVEL"},
		{"unknown scheme hides the URL", map[string]string{"DATABASE_URL": "mysql://u:secret@db/x"}, "DATABASE_URL: scheme"},
		{"jwt without issuer", map[string]string{"AUTH_JWKS_FILE": "/j"}, "AUTH_JWT_ISSUER: is required"},
		{"dev mode with real keys", map[string]string{"AUTH_JWKS_FILE": "/j", "AUTH_JWT_ISSUER": "i", "AUTH_DEV_MODE": "1"}, "AUTH_DEV_MODE: cannot"},
		{"readiness timeout too long", map[string]string{"READINESS_TIMEOUT": "3s"}, "READINESS_TIMEOUT: 3s must be shorter"},
		{"delay not shorter than grace", map[string]string{"SHUTDOWN_DELAY": "30s", "SHUTDOWN_GRACE": "10s"}, "SHUTDOWN_DELAY"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := config.New(config.FromMap(tc.env))
			c := LoadConfig(e, "widget", "/tmp/widget.db")
			err := e.Err()
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				if !c.DatabaseDefaulted || c.Database.Path != "/tmp/widget.db" || c.JWTAudience != "widget" || c.GRPCAddr != ":9090" {
					t.Fatalf("defaults: %+v", c)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "secret") {
				t.Fatalf("error %v, want it to contain %q and no secret", err, tc.err)
			}
		})
	}
}

// fakeStore fails to open a given number of times, then opens.
type fakeStore struct {
	mu       sync.Mutex
	failures int
	closed   bool
}

func (f *fakeStore) Ping(context.Context) error { return nil }

func (f *fakeStore) Close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closed = true
}

func (f *fakeStore) open(context.Context) (*fakeStore, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failures > 0 {
		f.failures--
		return nil, errors.New("connection refused")
	}
	return f, nil
}

func TestDeferredBeforeAndAfterOpen(t *testing.T) {
	f := &fakeStore{}
	d := NewDeferred(f.open)
	if _, err := d.Load(); !errors.Is(err, storage.ErrNotStarted) {
		t.Fatalf("before open: %v", err)
	}
	if err := d.ping(t.Context()); !errors.Is(err, storage.ErrNotStarted) {
		t.Fatalf("ping before open: %v", err)
	}
	d.close() // nothing to close yet
	if err := d.open(t.Context()); err != nil {
		t.Fatal(err)
	}
	if s, err := d.Load(); err != nil || s != f || d.Store() != f {
		t.Fatalf("after open: %v, %v", s, err)
	}
	d.close()
	if !f.closed {
		t.Fatal("close did not close the store")
	}
}

// syncBuffer is a log sink the servers' goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestHost is a Host on port 0 with quick readiness rounds, logging
// to logs.
func newTestHost(t *testing.T, logs *syncBuffer) *Host {
	t.Helper()
	e := config.New(config.FromMap(map[string]string{
		"GRPC_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
		"READINESS_INTERVAL": "100ms", "READINESS_TIMEOUT": "50ms", "SHUTDOWN_GRACE": "2s",
		"DATABASE_URL": "sqlite:///unused.db",
	}))
	cfg := LoadConfig(e, "widget", "/unused.db")
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	h, err := New(t.Context(), Spec{Name: "widget", HealthService: "widget.v1.WidgetService"}, cfg,
		slog.New(slog.NewTextHandler(logs, nil)), config.FromMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestStartupDoesNotWaitForTheDatabase: with PostgreSQL not up (nothing
// listens on its port), the startup probe passes once the servers listen,
// so Kubernetes does not restart the pod, while readiness stays off.
func TestStartupDoesNotWaitForTheDatabase(t *testing.T) {
	var logs syncBuffer
	h := newTestHost(t, &logs)
	if err := h.Listen(t.Context(), Gateway{Register: func(context.Context, *gwruntime.ServeMux, grpc.ClientConnInterface) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	late := "postgres://postgres@" + l.Addr().String() + "/late?connect_timeout=1"
	_ = l.Close()
	d := NewDeferred(func(ctx context.Context) (*pgxpool.Pool, error) {
		pool, err := storage.OpenPostgres(ctx, late)
		if err != nil {
			return nil, err
		}
		if err := pool.Ping(ctx); err != nil {
			pool.Close()
			return nil, err
		}
		return pool, nil
	})
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, d, Hooks{}) }()
	admin := "http://" + h.Addrs().Admin.String()
	waitReady(t, admin+"/health/startup")
	resp, err := http.Get(admin + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/health/ready = %d with the database down, want 503", resp.StatusCode)
	}
	// The gRPC port serves too (not ready, but answering).
	conn, err := grpc.NewClient(h.Addrs().GRPC.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	hc, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
	if err != nil || hc.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("gRPC health = %v, %v; want NOT_SERVING", hc.GetStatus(), err)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestRunOrder runs a Host end to end on port 0: the database opens after
// a retry, background tasks start only then, and shutdown runs the hooks in
// order before the store closes.
func TestRunOrder(t *testing.T) {
	var logs syncBuffer
	h := newTestHost(t, &logs)
	err := h.Listen(t.Context(), Gateway{
		Register: func(context.Context, *gwruntime.ServeMux, grpc.ClientConnInterface) error { return nil },
		Wrap: func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("X-Wrapped", "yes")
				next.ServeHTTP(w, r)
			})
		},
	})
	if err != nil {
		t.Fatal(err)
	}

	var (
		mu    sync.Mutex
		steps []string
	)
	step := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		steps = append(steps, s)
	}
	f := &fakeStore{failures: 1}
	d := NewDeferred(f.open)
	started := make(chan struct{})
	ctx, stop := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- h.Run(ctx, d, Hooks{
			Background: []func(context.Context){func(ctx context.Context) {
				if _, err := d.Load(); err != nil {
					t.Errorf("background task started before the database opened: %v", err)
				}
				close(started)
				<-ctx.Done()
				step("background done")
			}},
			Drain: func() { step("drain") },
			Close: []func(){func() { step("close") }},
		})
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("background task never started")
	}

	waitReady(t, "http://"+h.Addrs().Admin.String()+"/health/ready")
	resp, err := http.Get("http://" + h.Addrs().HTTP.String() + "/nowhere")
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.Header.Get("X-Wrapped") != "yes" {
		t.Error("the gateway's Wrap was not applied")
	}

	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got, want := strings.Join(steps, ", "), "drain, background done, close"; got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
	if !f.closed {
		t.Error("the store was not closed")
	}
	for _, line := range []string{"opening database", "database ready, migrations applied", "stopped"} {
		if !strings.Contains(logs.String(), line) {
			t.Errorf("no %q in the logs:\n%s", line, logs.String())
		}
	}
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never became ready (last: %v)", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestAuthFilesAreConfigurationErrors checks that a key file that cannot
// be used comes back as a *config.Error naming its variable, which the
// command line answers with one line and exit code 2.
func TestAuthFilesAreConfigurationErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	garbage := write("garbage", "not a key")
	keys := write("keys.json", `{"keys": [{"name": "a", "sha256": "`+strings.Repeat("ab", 32)+
		`", "roles": ["admin"], "expires": "2099-01-01T00:00:00Z", "rate_per_second": 1, "burst": 1}]}`)
	missing := filepath.Join(dir, "missing")
	cases := []struct {
		name     string
		env      map[string]string
		variable string // "" means New succeeds
		notExist bool
	}{
		{"usable keys file", map[string]string{"AUTH_API_KEYS_FILE": keys}, "", false},
		{"missing keys file", map[string]string{"AUTH_API_KEYS_FILE": missing}, "AUTH_API_KEYS_FILE", true},
		{"keys file not JSON", map[string]string{"AUTH_API_KEYS_FILE": garbage}, "AUTH_API_KEYS_FILE", false},
		{"missing public key", map[string]string{"AUTH_JWT_PUBLIC_KEY_FILE": missing, "AUTH_JWT_ISSUER": "i"}, "AUTH_JWT_PUBLIC_KEY_FILE", true},
		{"public key not PEM", map[string]string{"AUTH_JWT_PUBLIC_KEY_FILE": garbage, "AUTH_JWT_ISSUER": "i"}, "AUTH_JWT_PUBLIC_KEY_FILE", false},
		{"JWKS not JSON", map[string]string{"AUTH_JWKS_FILE": garbage, "AUTH_JWT_ISSUER": "i"}, "AUTH_JWKS_FILE", false},
		{"usable downstream key", map[string]string{"DOWNSTREAM_API_KEY_FILE": write("key", "k-123\n")}, "", false},
		{"missing downstream key", map[string]string{"DOWNSTREAM_API_KEY_FILE": missing}, "DOWNSTREAM_API_KEY_FILE", true},
		{"empty downstream key", map[string]string{"DOWNSTREAM_API_KEY_FILE": write("empty", " \n")}, "DOWNSTREAM_API_KEY_FILE", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := config.New(config.FromMap(tc.env))
			cfg := LoadConfig(e, "widget", "/unused.db")
			if err := e.Err(); err != nil {
				t.Fatal(err)
			}
			_, err := New(t.Context(), Spec{Name: "widget", HealthService: "widget.v1.WidgetService"}, cfg,
				slog.New(slog.DiscardHandler), config.FromMap(nil))
			if tc.variable == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var bad *config.Error
			if !errors.As(err, &bad) || bad.Var != tc.variable {
				t.Fatalf("error %v, want a *config.Error for %s", err, tc.variable)
			}
			msg := bad.Error()
			if !strings.HasPrefix(msg, "invalid configuration: "+tc.variable+": ") || strings.Contains(msg, "auth:") || strings.Contains(msg, "\n") {
				t.Errorf("message %q, want one line naming %s", msg, tc.variable)
			}
			if errors.Is(err, fs.ErrNotExist) != tc.notExist {
				t.Errorf("errors.Is(err, fs.ErrNotExist) = %v, want %v", !tc.notExist, tc.notExist)
			}
		})
	}
}

// TestCloseFreesWhatNewAndListenOpened: a service whose construction
// fails after Listen must not keep its ports (a retry in the same process,
// or a test, would find them taken).
func TestCloseFreesWhatNewAndListenOpened(t *testing.T) {
	e := config.New(config.FromMap(map[string]string{
		"GRPC_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
		"DATABASE_URL": "sqlite:///unused.db",
	}))
	cfg := LoadConfig(e, "widget", "/unused.db")
	if err := e.Err(); err != nil {
		t.Fatal(err)
	}
	h, err := New(t.Context(), Spec{Name: "widget", HealthService: "widget.v1.WidgetService"}, cfg,
		slog.New(slog.DiscardHandler), config.FromMap(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Listen(t.Context(), Gateway{Register: func(context.Context, *gwruntime.ServeMux, grpc.ClientConnInterface) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	h.Close()
	for _, a := range []net.Addr{h.Addrs().GRPC, h.Addrs().HTTP, h.Addrs().Admin} {
		l, err := net.Listen("tcp", a.String())
		if err != nil {
			t.Fatalf("%s still taken after Close: %v", a, err)
		}
		_ = l.Close()
	}
}

// FAULT_EXIT_AFTER ends a serving process with an error, as a build that
// crash-loops would, after draining like any shutdown.
func TestFaultExitAfter(t *testing.T) {
	var logs syncBuffer
	h := newTestHost(t, &logs)
	h.cfg.FaultExitAfter, h.cfg.ShutdownDelay = 300*time.Millisecond, 0
	if err := h.Listen(t.Context(), Gateway{Register: func(context.Context, *gwruntime.ServeMux, grpc.ClientConnInterface) error { return nil }}); err != nil {
		t.Fatal(err)
	}
	d := NewDeferred(func(ctx context.Context) (*pgxpool.Pool, error) { return nil, errors.New("no database in this test") })
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- h.Run(t.Context(), d, Hooks{}) }()
	select {
	case err := <-done:
		if !errors.Is(err, errFaultExit) || time.Since(start) < 300*time.Millisecond {
			t.Errorf("Run returned %v after %s; want the fault's error after 300ms", err, time.Since(start))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run still serving 10s after FAULT_EXIT_AFTER=300ms")
	}
}
