// Package hosttest runs a service's App in process on loopback for that
// service's own tests: an environment with port 0 and a fresh SQLite
// file, API keys, Run in the background with a checked stop, the wait for
// readiness, and JSON calls to the gateway.
//
// It is test code: only _test.go files may import it, never a service's
// program.
package hosttest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/host"
)

// API keys the environment from Env accepts: AdminKey (role "admin") for
// test setup and checks, ServiceKey (role "service") for calls the order
// service would make.
const (
	AdminKey   = "key-admin-0123456789"
	ServiceKey = "key-service-0123456789"
)

// The files of the key Secret, named as the bundled msctl.yaml names them
// (keys.apiKeys, keys.downstreamApiKey).
const (
	APIKeysFile       = "api-keys.json"
	DownstreamKeyFile = "downstream-api-key"
)

// APIKeys is an API keys file (AUTH_API_KEYS_FILE) of the given entries.
func APIKeys(entries ...auth.APIKeyEntry) []byte {
	data, err := json.Marshal(map[string]any{"keys": entries})
	if err != nil {
		panic(err)
	}
	return data
}

// Keys are the files of the test key Secret: AdminKey and ServiceKey as
// API keys, with rate limits no test or benchmark reaches, and ServiceKey
// as the key to call other services with.
func Keys() map[string][]byte {
	exp := time.Now().Add(time.Hour)
	return map[string][]byte{
		APIKeysFile: APIKeys(
			auth.APIKeyEntry{Name: "admin", SHA256: auth.HashAPIKey(AdminKey), Roles: []string{"admin"}, Expires: exp, RatePerSecond: 10000, Burst: 10000},
			auth.APIKeyEntry{Name: "order", SHA256: auth.HashAPIKey(ServiceKey), Roles: []string{"service"}, Expires: exp, RatePerSecond: 10000, Burst: 10000},
		),
		DownstreamKeyFile: []byte(ServiceKey + "\n"),
	}
}

// KeysEnv writes Keys as a mounted Secret (see SecretDir) and returns the
// variables that point a service at it, as the chart sets them.
func KeysEnv(t testing.TB) map[string]string {
	t.Helper()
	dir := SecretDir(t, Keys())
	return map[string]string{
		"AUTH_API_KEYS_FILE":      filepath.Join(dir, APIKeysFile),
		"DOWNSTREAM_API_KEY_FILE": filepath.Join(dir, DownstreamKeyFile),
	}
}

// SecretDir writes files into a new directory laid out as the kubelet
// mounts a Secret volume (see MountSecret), so a service under test reads
// its keys exactly as it does in a pod.
func SecretDir(t testing.TB, files map[string][]byte) string {
	t.Helper()
	dir := t.TempDir()
	if err := MountSecret(dir, files); err != nil {
		t.Fatal(err)
	}
	return dir
}

// UpdateSecret changes a SecretDir's content as the kubelet does when the
// Secret changes (see MountSecret).
func UpdateSecret(t testing.TB, dir string, files map[string][]byte) {
	t.Helper()
	if err := MountSecret(dir, files); err != nil {
		t.Fatal(err)
	}
}

// MountSecret lays files out in dir as the kubelet mounts a Secret: the
// content in a timestamped directory, a "..data" symlink to it, and each
// file a symlink through "..data". On a directory it laid out before, it
// swaps the content as the kubelet does when the Secret changes: a new
// timestamped directory, "..data" replaced in one rename, the old
// directory removed; files then names the same files as before.
func MountSecret(dir string, files map[string][]byte) error {
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts := "..2026_" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		return err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, ts, name), data, 0o440); err != nil {
			return err
		}
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data_tmp")); err != nil {
		return err
	}
	if err := os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")); err != nil {
		return err
	}
	if old != "" {
		return os.RemoveAll(filepath.Join(dir, old))
	}
	for name := range files {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			return err
		}
	}
	return nil
}

// Env is the environment of a service under test: port 0 everywhere, its
// own SQLite file named db, readiness quick enough for tests, and the
// keys of KeysEnv. extra, added last, overrides any of it.
func Env(t testing.TB, db string, extra map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	env := map[string]string{
		"GRPC_ADDR": "127.0.0.1:0", "HTTP_ADDR": "127.0.0.1:0", "ADMIN_ADDR": "127.0.0.1:0",
		"DATABASE_URL":       "sqlite://" + filepath.ToSlash(filepath.Join(dir, db)),
		"READINESS_INTERVAL": "200ms", "READINESS_TIMEOUT": "150ms", "SHUTDOWN_GRACE": "5s",
	}
	maps.Copy(env, KeysEnv(t))
	maps.Copy(env, extra)
	return env
}

// App is what a service's app.New returns.
type App interface {
	Run(ctx context.Context) error
	Addrs() host.Addrs
}

// Start builds a service from env through its own LoadConfig (load) and
// New (build), with logs discarded, and runs it as Run does.
func Start[C any, A App](t testing.TB, env map[string]string,
	load func(func(string) (string, bool)) (C, error),
	build func(context.Context, C, *slog.Logger, func(string) (string, bool)) (A, error),
) (A, *grpc.ClientConn) {
	t.Helper()
	cfg, err := load(config.FromMap(env))
	if err != nil {
		t.Fatal(err)
	}
	a, err := build(context.Background(), cfg, slog.New(slog.DiscardHandler), config.FromMap(env))
	if err != nil {
		t.Fatal(err)
	}
	return a, Run(t, a)
}

// Run runs a until the test ends, when it stops a and fails the test if
// Run returned an error, and a plain client connection to a's gRPC port,
// closed first. It returns once a reports ready.
func Run(t testing.TB, a App) *grpc.ClientConn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	conn, err := grpc.NewClient(a.Addrs().GRPC.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		cancel()
		<-done
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get("http://" + a.Addrs().Admin.String() + "/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return conn
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("never became ready")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// As is a context whose gRPC calls carry the API key.
func As(key string) context.Context {
	return metadata.AppendToOutgoingContext(context.Background(), "x-api-key", key)
}

// Do sends an HTTP request to the gateway at addr with AdminKey and
// decodes the JSON answer, failing the test when it is not JSON.
func Do(t testing.TB, addr host.Addrs, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr.HTTP.String()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}
