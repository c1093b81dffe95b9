package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/host/hosttest"
	"github.com/msctl/msctl/services/kit/logging"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
	"github.com/msctl/msctl/services/user/internal/app"
)

const (
	testIssuer   = "https://login.test"
	testAudience = "user"
	adminKey     = "key-admin-0123456789"
	readerKey    = "key-reader-0123456789"
	slowKey      = "key-slow-0123456789"
	benchKey     = "key-bench-0123456789"
)

// creds are the keys and files every test instance trusts.
type creds struct {
	rsa     *rsa.PrivateKey
	pubPEM  []byte
	env     map[string]string
	secrets []string // strings that must never appear in a log line
}

var (
	credsOnce sync.Once
	shared    *creds
)

func testCreds(t testing.TB) *creds {
	t.Helper()
	credsOnce.Do(func() {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
		dir, err := os.MkdirTemp("", "user-e2e-")
		if err != nil {
			t.Fatal(err)
		}
		pub := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		// Laid out as the key Secret is mounted in a pod.
		keyFile, keysFile := filepath.Join(dir, "jwt-public-key.pem"), filepath.Join(dir, hosttest.APIKeysFile)
		exp := time.Now().Add(24 * time.Hour)
		keys, _ := json.Marshal(map[string]any{"keys": []auth.APIKeyEntry{
			{Name: "admin", SHA256: auth.HashAPIKey(adminKey), Roles: []string{"admin"}, Expires: exp, RatePerSecond: 1000, Burst: 1000},
			{Name: "reader", SHA256: auth.HashAPIKey(readerKey), Roles: []string{"reader"}, Expires: exp, RatePerSecond: 1000, Burst: 1000},
			{Name: "bench", SHA256: auth.HashAPIKey(benchKey), Roles: []string{"reader"}, Expires: exp, RatePerSecond: 1e7, Burst: 1e6},
			{Name: "slow", SHA256: auth.HashAPIKey(slowKey), Roles: []string{"reader"}, Expires: exp, RatePerSecond: 0.001, Burst: 1},
		}})
		if err := hosttest.MountSecret(dir, map[string][]byte{filepath.Base(keyFile): pub, filepath.Base(keysFile): keys}); err != nil {
			t.Fatal(err)
		}
		shared = &creds{rsa: k, pubPEM: pub, env: map[string]string{
			"AUTH_JWT_PUBLIC_KEY_FILE": keyFile, "AUTH_JWT_ISSUER": testIssuer, "AUTH_JWT_AUDIENCE": testAudience,
			"AUTH_API_KEYS_FILE": keysFile,
		}, secrets: []string{adminKey, readerKey, slowKey, benchKey}}
	})
	return shared
}

// token signs an RS256 token; edit changes the claims before signing.
func (c *creds) token(t testing.TB, roles []string, edit func(jwt.MapClaims)) string {
	t.Helper()
	claims := jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "tester", "roles": roles,
		"iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
	if edit != nil {
		edit(claims)
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodRS256, claims).SignedString(c.rsa)
	if err != nil {
		t.Fatal(err)
	}
	c.secrets = append(c.secrets, s)
	return s
}

// logBuffer collects a service's JSON log for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// instance is one in-process user service on loopback port 0.
type instance struct {
	t      testing.TB
	addrs  app.Addrs
	log    *logBuffer
	conn   *grpc.ClientConn
	client userv1.UserServiceClient
	stop   func()
}

func start(t testing.TB, env map[string]string) *instance {
	t.Helper()
	return startWith(t, env, &logBuffer{})
}

// startWith starts an instance logging to logs and waits until it is
// ready.
func startWith(t testing.TB, env map[string]string, logs *logBuffer) *instance {
	t.Helper()
	in := launch(t, env, logs)
	in.waitReady(true)
	return in
}

// launch starts an instance logging to logs, without waiting for it.
func launch(t testing.TB, env map[string]string, logs *logBuffer) *instance {
	t.Helper()
	all := map[string]string{
		"GRPC_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
		"DATABASE_URL":       "sqlite://" + filepath.ToSlash(filepath.Join(t.TempDir(), "users.db")),
		"READINESS_INTERVAL": "200ms", "READINESS_TIMEOUT": "150ms", "EVENTS_POLL_INTERVAL": "50ms",
		"SHUTDOWN_GRACE": "5s", "LOG_LEVEL": "debug",
	}
	maps.Copy(all, testCreds(t).env)
	maps.Copy(all, env)
	cfg, err := app.LoadConfig(config.FromMap(all))
	if err != nil {
		t.Fatal(err)
	}
	level, _ := logging.ParseLevel(all["LOG_LEVEL"])
	var w io.Writer = logs
	if logs == nil {
		w = io.Discard
		logs = &logBuffer{}
	}
	a, err := app.New(context.Background(), cfg, logging.New(w, level, app.Name, "test"), config.FromMap(all))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	in := &instance{t: t, addrs: a.Addrs(), log: logs}
	in.stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	in.conn, err = grpc.NewClient(a.Addrs().GRPC.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	in.client = userv1.NewUserServiceClient(in.conn)
	t.Cleanup(func() {
		_ = in.conn.Close()
		in.stop()
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})
	return in
}

// waitReady polls /health/ready until it reports want.
func (in *instance) waitReady(want bool) {
	in.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		code, _ := in.adminGet("/health/ready")
		if (code == http.StatusOK) == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	in.t.Fatalf("readiness never became %v", want)
}

func (in *instance) adminGet(path string) (int, string) {
	resp, err := http.Get("http://" + in.addrs.Admin.String() + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// do sends an HTTP request to the gateway and decodes the JSON answer.
func (in *instance) do(method, path, body string, header http.Header) (int, map[string]any) {
	in.t.Helper()
	req, err := http.NewRequest(method, "http://"+in.addrs.HTTP.String()+path, strings.NewReader(body))
	if err != nil {
		in.t.Fatal(err)
	}
	maps.Copy(req.Header, header)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		in.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		in.t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func bearer(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }
func apiKey(k string) http.Header   { return http.Header{"X-Api-Key": {k}} }

// asAdmin is a gRPC context carrying the admin API key.
func asAdmin() context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "x-api-key", adminKey)
}

func grpcHeader(md *metadata.MD) grpc.CallOption { return grpc.Header(md) }
