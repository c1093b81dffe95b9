// Package app wires the payment service together: its configuration, the
// kit's host, the store, the simulated processor and the API. main only
// parses flags, handles signals and exits; tests run the same App on port
// 0.
package app

import (
	"context"
	"log/slog"

	gwruntime "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/host"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	"github.com/msctl/msctl/services/payment/internal/domain"
	"github.com/msctl/msctl/services/payment/internal/paymentapi"
	"github.com/msctl/msctl/services/payment/internal/store"
)

// Name is the service's name in metrics, traces and logs.
const Name = "payment"

// Addrs are the bound listen addresses.
type Addrs = host.Addrs

// App is one running payment service.
type App struct {
	host  *host.Host
	store *host.Deferred[store.Store]
}

// New builds the service and opens its listeners; nothing is served and
// the database is not touched until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger, lookup func(string) (string, bool)) (_ *App, err error) {
	h, err := host.New(ctx, host.Spec{Name: Name, HealthService: paymentv1.PaymentService_ServiceDesc.ServiceName,
		Policy: paymentapi.Policy}, cfg.Config, logger, lookup)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			h.Close()
		}
	}()
	a := &App{host: h, store: host.NewDeferred(func(ctx context.Context) (store.Store, error) {
		return store.Open(ctx, cfg.Database)
	})}
	proc := domain.Processor{DeclineRate: cfg.DeclineRate, DeclineCards: cfg.DeclineCards}
	if proc.DeclineRate > 0 || len(proc.DeclineCards) > 0 {
		logger.Warn("simulated declines on", "decline_rate", proc.DeclineRate, "decline_cards", len(proc.DeclineCards))
	}
	api := paymentapi.New(a.store.Store, logger, proc)
	paymentv1.RegisterPaymentServiceServer(h, api)
	err = h.Listen(ctx, host.Gateway{Register: func(ctx context.Context, mux *gwruntime.ServeMux, conn grpc.ClientConnInterface) error {
		return paymentv1.RegisterPaymentServiceHandlerClient(ctx, mux, paymentv1.NewPaymentServiceClient(conn))
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

// Run serves until ctx ends, then drains: readiness off, ShutdownDelay of
// continued service, then the servers stop gracefully within ShutdownGrace
// and the database closes.
func (a *App) Run(ctx context.Context) error {
	return a.host.Run(ctx, a.store, host.Hooks{})
}
