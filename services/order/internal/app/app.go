// Package app wires the order service together: its configuration, the
// kit's host, the downstream clients, the store, the saga and its resumer,
// the checkout-flow experiment and the API. main only parses flags,
// handles signals and exits; tests run the same App on port 0.
package app

import (
	"context"
	"log/slog"
	"net/http"

	gwruntime "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/experiments"
	"github.com/msctl/msctl/services/kit/host"
	"github.com/msctl/msctl/services/kit/idempotency"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/deps"
	"github.com/msctl/msctl/services/order/internal/orderapi"
	"github.com/msctl/msctl/services/order/internal/saga"
	"github.com/msctl/msctl/services/order/internal/store"
)

// Name is the service's name in metrics, traces and logs.
const Name = "order"

// Addrs are the bound listen addresses.
type Addrs = host.Addrs

// App is one running order service.
type App struct {
	cfg   Config
	host  *host.Host
	saga  *saga.Saga
	store *host.Deferred[store.Store]
}

// New builds the service and opens its listeners; nothing is served and
// the database is not touched until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger, lookup func(string) (string, bool)) (_ *App, err error) {
	h, err := host.New(ctx, host.Spec{Name: Name, HealthService: orderv1.OrderService_ServiceDesc.ServiceName,
		Policy: orderapi.Policy}, cfg.Config, logger, lookup)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	a := &App{cfg: cfg, host: h, store: host.NewDeferred(func(ctx context.Context) (store.Store, error) {
		return store.Open(ctx, cfg.Database)
	})}
	// Readiness checks only the order service's own database: an open
	// breaker makes orders fail fast and compensate, which this replica
	// does perfectly well, so it stays ready and the breaker shows in
	// circuit_breaker_state and /debug/breakers instead.
	dc := cfg.Deps
	dc.Key = h.DownstreamKey()
	if dc.Key == nil {
		logger.Warn("DOWNSTREAM_API_KEY_FILE not set: calls to user, inventory and payment carry no credentials")
	}
	d, err := deps.Dial(h.Clients(), dc)
	if err != nil {
		return nil, err
	}
	if a.saga, err = saga.New(a.store.Store, d, h.Registry(), logger); err != nil {
		return nil, err
	}
	exposures, err := experiments.NewExposures(h.Registry())
	if err != nil {
		return nil, err
	}
	api := orderapi.New(a.store.Store, a.saga, logger, cfg.Experiment, exposures, cfg.SagaTimeout)
	orderv1.RegisterOrderServiceServer(h, api)
	err = h.Listen(ctx, host.Gateway{
		Register: func(ctx context.Context, mux *gwruntime.ServeMux, conn grpc.ClientConnInterface) error {
			return orderv1.RegisterOrderServiceHandlerClient(ctx, mux, orderv1.NewOrderServiceClient(conn))
		},
		// Every POST gets an Idempotency-Key (the caller's, or a new one
		// echoed back), so the client can retry CreateOrder safely.
		Wrap: func(h http.Handler) http.Handler { return idempotency.Middleware(responseHeaders(h)) },
	})
	if err != nil {
		return nil, err
	}
	return a, nil
}

// Addrs returns the bound addresses (useful with port 0).
func (a *App) Addrs() Addrs { return a.host.Addrs() }

// DevToken is the admin token minted in dev mode, "" otherwise.
func (a *App) DevToken() string { return a.host.DevToken() }

// Run serves until ctx ends, resuming unfinished sagas once the database
// is open, then drains: readiness off, ShutdownDelay of continued service,
// then the servers stop gracefully within ShutdownGrace and the database
// closes.
func (a *App) Run(ctx context.Context) error {
	return a.host.Run(ctx, a.store, host.Hooks{Background: []func(context.Context){
		func(ctx context.Context) {
			a.saga.ResumeEvery(ctx, a.cfg.ResumeInterval, saga.ResumePolicy{Idle: a.cfg.SagaTimeout, Backoff: a.cfg.ResumeInterval})
		},
	}})
}
