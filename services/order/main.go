// Command order is the order service: orders placed through a crash-safe
// saga over the user, inventory and payment services (USER_ADDR,
// INVENTORY_ADDR, PAYMENT_ADDR), over gRPC (GRPC_ADDR, :9090), HTTP/JSON
// (HTTP_ADDR, :8080) and an admin port (ADMIN_ADDR, :8081: /metrics,
// /health/*, /debug/breakers).
//
// With no environment it keeps its data in a SQLite file in the user's
// cache directory. Run it with --dev to get a locally signed admin token.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/msctl/msctl/services/kit/buildinfo"
	"github.com/msctl/msctl/services/kit/logging"
	"github.com/msctl/msctl/services/order/internal/app"
)

func main() {
	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

func run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("order", flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.Bool("version", false, "print the build version and exit")
	healthCheck := fs.Bool("health-check", false, "probe the local readiness endpoint and exit 0 (ready) or 1")
	dev := fs.Bool("dev", false, "local dev mode: generate a signing key and print an admin token (same as AUTH_DEV_MODE=true)")
	pprof := fs.Bool("pprof", false, "serve /debug/pprof on the admin port (same as ADMIN_PPROF=true)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *version {
		fmt.Fprintf(stdout, "order %s (commit %s)\n", buildinfo.Version(), buildinfo.Commit())
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
	cfg, err := app.LoadConfig(lookup)
	if err != nil {
		fmt.Fprintf(stderr, "order: %v\n", err)
		return 2
	}
	if *healthCheck {
		return probe(cfg.AdminAddr, stderr)
	}
	level, _ := logging.ParseLevel(cfg.LogLevel)
	logger := logging.New(stderr, level, app.Name, buildinfo.Version())

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	a, err := app.New(ctx, cfg, logger, lookup)
	if err != nil {
		logger.Error("start-up failed", "error", err)
		return 1
	}
	if tok := a.DevToken(); tok != "" {
		fmt.Fprintf(stderr, "\ndev mode admin token (24h):\n  export TOKEN=%s\n  curl -H \"Authorization: Bearer $TOKEN\" http://%s/api/v1/orders\n\n", tok, dialable(a.Addrs().HTTP.String()))
	}
	if err := a.Run(ctx); err != nil {
		logger.Error("serving failed", "error", err)
		return 1
	}
	return 0
}

// probe asks the admin port's readiness endpoint, for container
// HEALTHCHECK instructions in images without curl.
func probe(adminAddr string, stderr io.Writer) int {
	c := &http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get("http://" + dialable(adminAddr) + "/health/ready")
	if err != nil {
		fmt.Fprintf(stderr, "order: health check: %v\n", err)
		return 1
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		fmt.Fprintf(stderr, "order: not ready: %s %s", resp.Status, body)
		return 1
	}
	return 0
}

// dialable turns a listen address such as ":8081" into 127.0.0.1:8081.
func dialable(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
