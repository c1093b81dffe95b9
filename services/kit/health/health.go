// Package health owns a service's liveness, readiness and start-up state
// and reports it on the admin port (/health/live, /health/ready,
// /health/startup) and through the standard grpc.health.v1 service, so
// Kubernetes probes and gRPC clients see the same answer.
//
// Start-up is done once MarkListening says the servers accept calls:
// a database that is late keeps readiness off, not start-up, so the
// startup probe never restarts a pod for waiting on it. Readiness is
// false until MarkStarted, while any readiness check fails, and for good
// once Drain is called at shutdown.
package health

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"sync"
	"time"

	grpchealth "google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// Check answers nil when a dependency the service needs is usable.
type Check func(ctx context.Context) error

// Checker runs readiness checks and holds the probe state.
type Checker struct {
	logger   *slog.Logger
	grpc     *grpchealth.Server
	services []string
	checks   map[string]Check

	mu        sync.Mutex
	listening bool
	started   bool
	draining  bool
	failures  map[string]string
}

// New returns a Checker that also drives the grpc.health.v1 status of the
// overall server ("") and of each named gRPC service.
func New(logger *slog.Logger, services ...string) *Checker {
	c := &Checker{
		logger:   logger,
		grpc:     grpchealth.NewServer(),
		services: services,
		checks:   map[string]Check{},
		failures: map[string]string{},
	}
	c.publish(false)
	return c
}

// GRPC is the grpc.health.v1 implementation to register on the server.
func (c *Checker) GRPC() healthpb.HealthServer { return c.grpc }

// AddCheck adds a readiness check; call before Run.
func (c *Checker) AddCheck(name string, fn Check) { c.checks[name] = fn }

// MarkListening says the servers accept calls: start-up is done.
func (c *Checker) MarkListening() {
	c.mu.Lock()
	c.listening = true
	c.mu.Unlock()
}

// MarkStarted says start-up work (migrations, first connections) is
// done, which readiness waits for.
func (c *Checker) MarkStarted() {
	c.mu.Lock()
	c.started = true
	c.mu.Unlock()
}

// Drain turns readiness off for good, so load balancers stop sending new
// work while in-flight requests finish.
func (c *Checker) Drain() {
	c.mu.Lock()
	c.draining = true
	c.mu.Unlock()
	c.grpc.Shutdown()
}

// Ready reports the current readiness and, when not ready, why.
func (c *Checker) Ready() (bool, map[string]string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	why := map[string]string{}
	switch {
	case c.draining:
		why["server"] = "shutting down"
	case !c.started:
		why["server"] = "starting"
	}
	for k, v := range c.failures {
		why[k] = v
	}
	return len(why) == 0, why
}

// RunChecks runs every check once with a timeout and updates readiness.
func (c *Checker) RunChecks(ctx context.Context, timeout time.Duration) {
	results := map[string]string{}
	for name, fn := range c.checks {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		if err := fn(cctx); err != nil {
			results[name] = err.Error()
		}
		cancel()
	}
	c.mu.Lock()
	for name := range c.checks {
		was, wasFailing := c.failures[name]
		now, failing := results[name]
		switch {
		case failing && !wasFailing:
			c.logger.Warn("readiness check failing", "check", name, "error", now)
		case !failing && wasFailing:
			c.logger.Info("readiness check passing again", "check", name, "was", was)
		}
	}
	c.failures = results
	c.mu.Unlock()
	ready, _ := c.Ready()
	c.publish(ready)
}

// Run checks every interval until ctx ends; the first round runs at once.
func (c *Checker) Run(ctx context.Context, interval, timeout time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		c.RunChecks(ctx, timeout)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (c *Checker) publish(ready bool) {
	c.mu.Lock()
	draining := c.draining
	c.mu.Unlock()
	if draining {
		return // Shutdown already set NOT_SERVING and ignores later updates.
	}
	st := healthpb.HealthCheckResponse_NOT_SERVING
	if ready {
		st = healthpb.HealthCheckResponse_SERVING
	}
	c.grpc.SetServingStatus("", st)
	for _, s := range c.services {
		c.grpc.SetServingStatus(s, st)
	}
}

// Register adds the three probe endpoints to mux.
func (c *Checker) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /health/live", func(w http.ResponseWriter, _ *http.Request) {
		// Live means the process can answer; dependencies are readiness's job,
		// or a database outage would restart every replica.
		write(w, true, nil)
	})
	mux.HandleFunc("GET /health/startup", func(w http.ResponseWriter, _ *http.Request) {
		c.mu.Lock()
		listening := c.listening
		c.mu.Unlock()
		var why map[string]string
		if !listening {
			why = map[string]string{"server": "starting"}
		}
		write(w, listening, why)
	})
	mux.HandleFunc("GET /health/ready", func(w http.ResponseWriter, _ *http.Request) {
		ok, why := c.Ready()
		write(w, ok, why)
	})
}

func write(w http.ResponseWriter, ok bool, why map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	body := struct {
		Status string            `json:"status"`
		Checks map[string]string `json:"failing,omitempty"`
	}{Status: "ok", Checks: why}
	if !ok {
		body.Status = "unavailable"
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_ = json.NewEncoder(w).Encode(body)
}
