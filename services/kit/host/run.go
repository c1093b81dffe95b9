package host

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errFaultExit ends a process that FAULT_EXIT_AFTER told to fail.
var errFaultExit = errors.New("fault injected: exiting (FAULT_EXIT_AFTER)")

// Hooks are a service's own steps in Run's order.
type Hooks struct {
	// Background tasks start once the database is open and must return
	// when their context ends, which happens when the servers have stopped.
	Background []func(ctx context.Context)
	// Drain runs when shutdown starts, right after readiness turns off and
	// before ShutdownDelay, for work the servers' graceful stop does not
	// end by itself, such as long-lived streams.
	Drain func()
	// Close runs after the servers and background tasks have stopped,
	// before the downstream clients and the database close.
	Close []func()
}

// Run serves until ctx ends, then drains: readiness off, Hooks.Drain,
// ShutdownDelay of continued service, then the gRPC and HTTP servers stop
// gracefully within ShutdownGrace, the admin port last; then background
// tasks end, Hooks.Close run, the clients and the database close and the
// traces are flushed. Listen must have succeeded.
// With FaultExitAfter set, it ends that long after it starts, as above,
// and returns an error.
func (h *Host) Run(ctx context.Context, db Database, hooks Hooks) error {
	h.health.AddCheck("database", db.ping)
	// Listen bound the ports; Serve accepts from them below.
	h.health.MarkListening()
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if !h.openDatabase(bg, db) {
			return
		}
		for _, task := range hooks.Background {
			wg.Add(1) // this goroutine still counts, so Wait cannot have returned
			go func() { defer wg.Done(); task(bg) }()
		}
	}()
	go func() { defer wg.Done(); h.health.Run(bg, h.cfg.ReadinessInterval, h.cfg.ReadinessTimeout) }()
	wg.Add(1)
	go func() { defer wg.Done(); h.keys.Run(bg, h.cfg.KeysReloadInterval) }()

	if h.cfg.FaultExitAfter > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, h.cfg.FaultExitAfter, errFaultExit)
		defer cancel()
	}
	err := h.group.Serve(ctx, h.cfg.ShutdownGrace, func() {
		h.logger.Info("shutting down: readiness off, draining", "delay", h.cfg.ShutdownDelay, "grace", h.cfg.ShutdownGrace)
		h.health.Drain()
		if hooks.Drain != nil {
			hooks.Drain()
		}
		time.Sleep(h.cfg.ShutdownDelay)
	})
	stopBG()
	wg.Wait()
	for _, c := range hooks.Close {
		c()
	}
	_ = h.clients.Close()
	db.close()
	tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if terr := h.tracing(tctx); terr != nil {
		h.logger.Warn("flushing traces", "error", terr)
	}
	if err == nil && errors.Is(context.Cause(ctx), errFaultExit) {
		err = errFaultExit
	}
	h.logger.Info("stopped")
	return err
}

// openDatabase connects and migrates, retrying until it works or ctx ends
// (then it returns false): a database that is late at start-up keeps
// readiness off instead of crash-looping the pod.
func (h *Host) openDatabase(ctx context.Context, db Database) bool {
	where := h.cfg.Database.Redacted()
	if h.cfg.DatabaseDefaulted {
		h.logger.Info("DATABASE_URL not set: using the local SQLite file", "path", h.cfg.Database.Path)
	}
	delay := 500 * time.Millisecond
	for {
		err := db.open(ctx)
		if err == nil {
			h.started.Store(true)
			h.health.MarkStarted()
			h.health.RunChecks(ctx, h.cfg.ReadinessTimeout)
			h.logger.Info("database ready, migrations applied", "database", where)
			return true
		}
		h.logger.Error("opening database", "database", where, "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}
