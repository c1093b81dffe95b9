package httpchain

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLevel(t *testing.T) {
	slow := 100 * time.Millisecond
	quiet := Options{Quiet: func(p string) bool { return p == "/metrics" || strings.HasPrefix(p, "/health/") }}
	cases := []struct {
		code int
		d    time.Duration
		path string
		want slog.Level
	}{
		{200, time.Millisecond, "/api/v1/users/1", slog.LevelDebug},
		{200, slow, "/api/v1/users/1", slog.LevelInfo},
		{401, time.Millisecond, "/api/v1/users/1", slog.LevelDebug}, // auth logs it, sampled
		{429, time.Millisecond, "/api/v1/users/1", slog.LevelDebug},
		{403, time.Millisecond, "/api/v1/users/1", slog.LevelInfo},
		{404, time.Millisecond, "/api/v1/users/1", slog.LevelInfo},
		{503, time.Millisecond, "/api/v1/users/1", slog.LevelError},
		{200, slow, "/metrics", slog.LevelDebug},
		{500, time.Millisecond, "/metrics", slog.LevelError},
		{503, time.Millisecond, "/health/ready", slog.LevelDebug},
		{503, slow, "/health/ready", slog.LevelDebug},
		{404, time.Millisecond, "/health/nope", slog.LevelDebug},
		{500, time.Millisecond, "/health/ready", slog.LevelError},
	}
	for _, c := range cases {
		if got := level(c.code, c.d, c.path, quiet, slow); got != c.want {
			t.Errorf("level(%d, %v, %s) = %v, want %v", c.code, c.d, c.path, got, c.want)
		}
	}
}

// TestQuietProbeNotLogged serves an admin-like port on loopback whose
// readiness answers 503, as during start-up, and checks that nothing is
// logged at info or above for it while a failing handler still is.
func TestQuietProbeNotLogged(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "starting", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("GET /metrics", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "gather failed", http.StatusInternalServerError)
	})
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	srv := httptest.NewServer(Wrap(mux, Options{Server: "admin", Logger: logger, Quiet: func(string) bool { return true }}))
	defer srv.Close()
	for _, c := range []struct {
		path   string
		code   int
		logged bool
	}{
		{"/health/ready", http.StatusServiceUnavailable, false},
		{"/metrics", http.StatusInternalServerError, true},
	} {
		logs.Reset()
		resp, err := srv.Client().Get(srv.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Fatalf("%s: status %d, want %d", c.path, resp.StatusCode, c.code)
		}
		if got := strings.Contains(logs.String(), `"path":"`+c.path+`"`); got != c.logged {
			t.Errorf("%s answering %d: logged %v, want %v: %s", c.path, c.code, got, c.logged, logs.String())
		}
	}
}

// lockedBuffer is written by the server's goroutines and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (l *lockedBuffer) Reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.b.Reset()
}
