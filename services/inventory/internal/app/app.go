// Package app wires the inventory service together: its configuration,
// the kit's host, the store, the reservation sweeper and the API. main
// only parses flags, handles signals and exits; tests run the same App on
// port 0.
package app

import (
	"context"
	"log/slog"
	"time"

	gwruntime "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/inventory/internal/inventoryapi"
	"github.com/msctl/msctl/services/inventory/internal/store"
	"github.com/msctl/msctl/services/kit/host"
)

// Name is the service's name in metrics, traces and logs.
const Name = "inventory"

// Addrs are the bound listen addresses.
type Addrs = host.Addrs

// App is one running inventory service.
type App struct {
	cfg    Config
	logger *slog.Logger
	host   *host.Host
	store  *host.Deferred[store.Store]
}

// New builds the service and opens its listeners; nothing is served and
// the database is not touched until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger, lookup func(string) (string, bool)) (_ *App, err error) {
	h, err := host.New(ctx, host.Spec{Name: Name, HealthService: inventoryv1.InventoryService_ServiceDesc.ServiceName,
		Policy: inventoryapi.Policy}, cfg.Config, logger, lookup)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	a := &App{cfg: cfg, logger: logger, host: h, store: host.NewDeferred(func(ctx context.Context) (store.Store, error) {
		return store.Open(ctx, cfg.Database)
	})}
	api := inventoryapi.New(a.store.Store, logger, cfg.ReservationTTL)
	inventoryv1.RegisterInventoryServiceServer(h, api)
	err = h.Listen(ctx, host.Gateway{Register: func(ctx context.Context, mux *gwruntime.ServeMux, conn grpc.ClientConnInterface) error {
		return inventoryv1.RegisterInventoryServiceHandlerClient(ctx, mux, inventoryv1.NewInventoryServiceClient(conn))
	}})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Addrs returns the bound addresses (useful with port 0).
func (a *App) Addrs() Addrs { return a.host.Addrs() }

// DevToken is the admin token minted in dev mode, "" otherwise.
func (a *App) DevToken() string { return a.host.DevToken() }

// Run serves until ctx ends, sweeping expired reservations once the
// database is open, then drains: readiness off, ShutdownDelay of continued
// service, then the servers stop gracefully within ShutdownGrace and the
// database closes.
func (a *App) Run(ctx context.Context) error {
	return a.host.Run(ctx, a.store, host.Hooks{Background: []func(context.Context){a.sweep}})
}

// sweepBatch bounds one sweep's work; a longer backlog is taken in the
// following sweeps.
const sweepBatch = 500

// sweep releases expired reservations every SweepInterval, so stock held
// for an order that was never committed (its saga crashed or gave up)
// comes back even if nobody asks about that order again. Every replica
// sweeps; the store's row locks make concurrent sweeps harmless.
func (a *App) sweep(ctx context.Context) {
	t := time.NewTicker(a.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := a.store.Store().ExpireDue(ctx, time.Now(), sweepBatch)
		switch {
		case ctx.Err() != nil:
		case err != nil:
			a.logger.Error("expiring reservations", "error", err)
		case n > 0:
			a.logger.Info("expired reservations released their stock", "count", n)
		}
	}
}
