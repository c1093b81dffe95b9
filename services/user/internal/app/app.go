// Package app wires the user service together: its configuration, the
// kit's host, the store and the API. main only parses flags, handles
// signals and exits; tests run the same App on port 0.
package app

import (
	"context"
	"log/slog"

	gwruntime "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/msctl/msctl/services/kit/host"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
	"github.com/msctl/msctl/services/user/internal/store"
	"github.com/msctl/msctl/services/user/internal/userapi"
)

// Name is the service's name in metrics, traces and logs.
const Name = "user"

// Addrs are the bound listen addresses.
type Addrs = host.Addrs

// App is one running user service.
type App struct {
	host  *host.Host
	api   *userapi.Server
	store *host.Deferred[store.Store]
}

// New builds the service and opens its listeners; nothing is served and
// the database is not touched until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger, lookup func(string) (string, bool)) (_ *App, err error) {
	h, err := host.New(ctx, host.Spec{Name: Name, HealthService: userv1.UserService_ServiceDesc.ServiceName,
		Policy: userapi.Policy}, cfg.Config, logger, lookup)
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
	a.api = userapi.New(a.store.Store, logger, cfg.EventsPollInterval)
	userv1.RegisterUserServiceServer(h, a.api)
	err = h.Listen(ctx, host.Gateway{Register: func(ctx context.Context, mux *gwruntime.ServeMux, conn grpc.ClientConnInterface) error {
		return userv1.RegisterUserServiceHandlerClient(ctx, mux, userv1.NewUserServiceClient(conn))
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

// Run serves until ctx ends, then drains: readiness off, open event
// streams told to reconnect, ShutdownDelay of continued service, then the
// servers stop gracefully within ShutdownGrace and the database closes.
func (a *App) Run(ctx context.Context) error {
	return a.host.Run(ctx, a.store, host.Hooks{Drain: a.api.Drain})
}
