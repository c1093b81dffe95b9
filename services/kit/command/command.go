// Package command is the command line every bundled service shares: the
// --version, --health-check, --dev and --pprof flags, typed config loaded
// and checked before anything starts, JSON logs, and serving until SIGTERM.
// A service's main only says how to load its config and build its app.
package command

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/msctl/msctl/services/kit/buildinfo"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/host"
	"github.com/msctl/msctl/services/kit/logging"
)

// Lookup reads an environment variable.
type Lookup = func(string) (string, bool)

// App is a built service, ready to serve.
type App interface {
	Run(ctx context.Context) error
	// DevToken is the admin token of --dev mode, or "".
	DevToken() string
	// Addrs are the bound addresses; --dev shows the HTTP one.
	Addrs() host.Addrs
}

// Config is what Run needs of a service's config: the common part, which
// every service's Config has by embedding host.Config.
type Config interface {
	HostConfig() host.Config
}

// Service describes one service's start-up.
type Service[C Config, A App] struct {
	// Name is the service's name in messages and logs.
	Name string
	// DevPath is an API path to show with the --dev token, e.g. /api/v1/users.
	DevPath string
	// Load reads and validates the typed config.
	Load func(Lookup) (C, error)
	// New builds the app (the service's app.New).
	New func(ctx context.Context, cfg C, logger *slog.Logger, lookup Lookup) (A, error)
}

// Run runs the service's command line and returns its exit code: 0 (also
// for --help), 1 for a failure, 2 for bad flags, arguments or config,
// including a *config.Error from New.
func Run[C Config, A App](s Service[C, A], args []string, lookup Lookup, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(s.Name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.Bool("version", false, "print the build version and exit")
	healthCheck := fs.Bool("health-check", false, "probe the local readiness endpoint and exit 0 (ready) or 1")
	dev := fs.Bool("dev", false, "local dev mode: generate a signing key and print an admin token (same as AUTH_DEV_MODE=true)")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof on the admin port (same as ADMIN_PPROF=true)")
	// The flag package's own usage would go to stderr and say nothing of
	// the environment, where almost all settings live; help prints
	// usage() instead, and a bad flag gets one line and a hint.
	fs.Usage = func() {}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs, s.Name, config.Describe(s.Load))
			return 0
		}
		fmt.Fprintf(stderr, "run '%s --help' for usage\n", s.Name)
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q: settings come from environment variables (see %s --help)\n",
			s.Name, fs.Arg(0), s.Name)
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
		return probe(s.Name, cfg.HostConfig().AdminAddr, stderr)
	}
	level, _ := logging.ParseLevel(cfg.HostConfig().LogLevel)
	logger := logging.New(stderr, level, s.Name, buildinfo.Version())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a, err := s.New(ctx, cfg, logger, lookup)
	var bad *config.Error
	if errors.As(err, &bad) {
		// A file a variable names that cannot be used is bad
		// configuration like a bad value: the same one line and code.
		fmt.Fprintf(stderr, "%s: %v\n", s.Name, bad)
		return 2
	}
	if err != nil {
		logger.Error("start-up failed", "error", err)
		return 1
	}
	if tok := a.DevToken(); tok != "" {
		fmt.Fprintf(stderr, "\ndev mode admin token (24h):\n  export TOKEN=%s\n  curl -H \"Authorization: Bearer $TOKEN\" http://%s%s\n\n",
			tok, Dialable(a.Addrs().HTTP.String()), s.DevPath)
	}
	if err := a.Run(ctx); err != nil {
		logger.Error("serving failed", "error", err)
		return 1
	}
	return 0
}

func usage(w io.Writer, fs *flag.FlagSet, name string, vars []config.Var) {
	fmt.Fprintf(w, "Usage: %s [flags]\n\n", name)
	fmt.Fprintf(w, "Serves %s over gRPC (GRPC_ADDR), HTTP/JSON (HTTP_ADDR) and an admin port\n", name)
	fmt.Fprintf(w, "(ADMIN_ADDR: /metrics, /health/*, /debug/breakers) until SIGTERM or SIGINT.\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nConfiguration is read from environment variables, not from flags or files.\n")
	fmt.Fprintf(w, "A bad value stops start-up with one line naming it (exit code 2).\n")
	if len(vars) > 0 {
		fmt.Fprintf(w, "Variables read by %s, with their defaults:\n", name)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, v := range vars {
			def := v.Default
			if def == "" {
				def = "(none)"
			}
			fmt.Fprintf(tw, "  %s\t%s\n", v.Name, def)
		}
		_ = tw.Flush()
	}
	fmt.Fprintf(w, "Tracing is configured by the standard OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT,\n")
	fmt.Fprintf(w, "OTEL_EXPORTER_OTLP_PROTOCOL, OTEL_TRACES_SAMPLER, OTEL_SERVICE_NAME, ...).\n")
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
