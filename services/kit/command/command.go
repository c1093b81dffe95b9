// Package command is the command line every bundled service shares: the
// --version, --health-check, --dev and --pprof flags, typed config loaded
// and checked before anything starts, JSON logs, and serving until SIGTERM.
// A service's main only says how to load its config and build its app.
package command

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/msctl/msctl/services/kit/buildinfo"
	"github.com/msctl/msctl/services/kit/logging"
)

// Lookup reads an environment variable.
type Lookup = func(string) (string, bool)

// App is a built service, ready to serve.
type App interface {
	Run(ctx context.Context) error
	// DevToken is the admin token of --dev mode, or "".
	DevToken() string
}

// Service describes one service's start-up.
type Service[C any] struct {
	// Name is the service's name in messages and logs.
	Name string
	// DevPath is an API path to show with the --dev token, e.g. /api/v1/users.
	DevPath string
	// Load reads and validates the typed config.
	Load func(Lookup) (C, error)
	// AdminAddr and LogLevel read those settings from the config.
	AdminAddr func(C) string
	LogLevel  func(C) string
	// New builds the app; it returns the HTTP address for the --dev hint.
	New func(ctx context.Context, cfg C, logger *slog.Logger, lookup Lookup) (App, net.Addr, error)
}

// Run runs the service's command line and returns its exit code: 0, 1 for
// a failure, 2 for bad flags or config.
func Run[C any](s Service[C], args []string, lookup Lookup, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(s.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.Bool("version", false, "print the build version and exit")
	healthCheck := fs.Bool("health-check", false, "probe the local readiness endpoint and exit 0 (ready) or 1")
	dev := fs.Bool("dev", false, "local dev mode: generate a signing key and print an admin token (same as AUTH_DEV_MODE=true)")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof on the admin port (same as ADMIN_PPROF=true)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintf(stdout, "%s %s (commit %s)\n", s.Name, buildinfo.Version(), buildinfo.Commit())
		return 0
	}
	if *dev || *pprof {
		inner := lookup
		lookup = func(k string) (string, bool) {
			if (k == "AUTH_DEV_MODE" && *dev) || (k == "ADMIN_PPROF" && *pprof) {
				return "true", true
			}
			return inner(k)
		}
	}
	cfg, err := s.Load(lookup)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", s.Name, err)
		return 2
	}
	if *healthCheck {
		return probe(s.Name, s.AdminAddr(cfg), stderr)
	}
	level, _ := logging.ParseLevel(s.LogLevel(cfg))
	logger := logging.New(stderr, level, s.Name, buildinfo.Version())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a, httpAddr, err := s.New(ctx, cfg, logger, lookup)
	if err != nil {
		logger.Error("start-up failed", "error", err)
		return 1
	}
	if tok := a.DevToken(); tok != "" {
		fmt.Fprintf(stderr, "\ndev mode admin token (24h):\n  export TOKEN=%s\n  curl -H \"Authorization: Bearer $TOKEN\" http://%s%s\n\n",
			tok, Dialable(httpAddr.String()), s.DevPath)
	}
	if err := a.Run(ctx); err != nil {
		logger.Error("serving failed", "error", err)
		return 1
	}
	return 0
}

// probe asks the admin port's readiness endpoint, for container
// HEALTHCHECK instructions in images without curl.
func probe(name, adminAddr string, stderr io.Writer) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + Dialable(adminAddr) + "/health/ready")
	if err != nil {
		fmt.Fprintf(stderr, "%s: health check: %v\n", name, err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		fmt.Fprintf(stderr, "%s: not ready: %s %s", name, resp.Status, body)
		return 1
	}
	return 0
}

// Dialable turns a listen address such as ":8081" into 127.0.0.1:8081.
func Dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
