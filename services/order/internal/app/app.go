// Package app wires the order service together: configuration, the kit's
// servers and chains, the downstream clients, the store, the saga and its
// resumer, the checkout-flow experiment and the API. main only parses
// flags, handles signals and exits; tests run the same App on port 0.
package app

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"sync"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/buildinfo"
	"github.com/msctl/msctl/services/kit/downstream"
	"github.com/msctl/msctl/services/kit/experiments"
	"github.com/msctl/msctl/services/kit/fault"
	"github.com/msctl/msctl/services/kit/gateway"
	"github.com/msctl/msctl/services/kit/grpcchain"
	"github.com/msctl/msctl/services/kit/health"
	"github.com/msctl/msctl/services/kit/httpchain"
	"github.com/msctl/msctl/services/kit/metrics"
	"github.com/msctl/msctl/services/kit/server"
	"github.com/msctl/msctl/services/kit/tracing"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/deps"
	"github.com/msctl/msctl/services/order/internal/orderapi"
	"github.com/msctl/msctl/services/order/internal/saga"
	"github.com/msctl/msctl/services/order/internal/store"
)

// Name is the service's name in metrics, traces and logs.
const Name = "order"

// Addrs are the bound listen addresses.
type Addrs struct{ GRPC, HTTP, Admin net.Addr }

// App is one running order service.
type App struct {
	cfg      Config
	logger   *slog.Logger
	group    *server.Group
	health   *health.Checker
	api      *orderapi.Server
	saga     *saga.Saga
	store    *deferredStore
	clients  *downstream.Clients
	tracing  tracing.Shutdown
	addrs    Addrs
	devToken string
}

// New builds the service and opens its listeners; nothing is served and
// the database is not touched until Run.
func New(ctx context.Context, cfg Config, logger *slog.Logger, lookup func(string) (string, bool)) (*App, error) {
	a := &App{cfg: cfg, logger: logger, store: &deferredStore{}}
	shutdown, traced, err := tracing.Setup(ctx, lookup, Name, buildinfo.Version())
	if err != nil {
		return nil, err
	}
	a.tracing = shutdown
	logger.Info("tracing", "exporting", traced)

	authn, err := a.authenticator()
	if err != nil {
		return nil, err
	}

	reg := metrics.NewRegistry(buildinfo.Version(), buildinfo.Commit())
	httpMetrics := metrics.NewHTTP(reg)
	// Readiness checks only the order service's own database: an open
	// breaker makes orders fail fast and compensate, which this replica
	// does perfectly well, so it stays ready and the breaker shows in
	// circuit_breaker_state and /debug/breakers instead.
	a.clients = downstream.New(reg, Name)
	d, err := deps.Dial(a.clients, cfg.Deps)
	if err != nil {
		return nil, err
	}
	if cfg.Deps.APIKey == "" {
		logger.Warn("DOWNSTREAM_API_KEY not set: calls to user, inventory and payment carry no credentials")
	}
	if a.saga, err = saga.New(a.store, d, reg, logger); err != nil {
		return nil, err
	}
	exposures, err := experiments.NewExposures(reg)
	if err != nil {
		return nil, err
	}
	a.health = health.New(logger, orderv1.OrderService_ServiceDesc.ServiceName)
	a.health.AddCheck("database", a.store.Ping)

	flt := fault.Injector{ErrorRate: cfg.FaultErrorRate, Delay: cfg.FaultDelay}
	if flt.Enabled() {
		logger.Warn("fault injection on", "error_rate", flt.ErrorRate, "delay", flt.Delay)
	}
	chainOpts := grpcchain.Options{Logger: logger, Metrics: metrics.NewGRPC(reg), Auth: authn, Fault: flt}
	opts := grpcchain.ServerOptions(chainOpts)
	// Reusing stream goroutines keeps their grown stacks: the SQLite driver
	// runs deep, and growing a fresh stack per call showed in profiles.
	opts = append(opts, grpc.NumStreamWorkers(uint32(8*runtime.GOMAXPROCS(0))))
	grpcSrv := grpc.NewServer(opts...)
	a.api = orderapi.New(a.store, a.saga, logger, cfg.Experiment, exposures, cfg.SagaTimeout)
	orderv1.RegisterOrderServiceServer(grpcSrv, a.api)
	healthpb.RegisterHealthServer(grpcSrv, a.health.GRPC())

	a.group = server.New(logger)
	ok := false
	defer func() {
		if !ok {
			a.group.Close()
		}
	}()
	if a.addrs.GRPC, err = a.group.AddGRPC("grpc", cfg.GRPCAddr, grpcSrv); err != nil {
		return nil, err
	}

	// The gateway calls the API in process, through the same unary chain
	// (one Metrics, one Authenticator) as the gRPC server, so HTTP
	// requests get the same auth, validation, metrics and logs as gRPC
	// ones without a second hop over loopback.
	mux := gateway.NewMux()
	gwAPI := &chained{api: a.api, chain: grpcchain.Unary(chainOpts)}
	if err := orderv1.RegisterOrderServiceHandlerServer(ctx, mux, gwAPI); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	gw := &http.Server{
		Handler: httpchain.Wrap(experimentHeader(mux), httpchain.Options{Server: "gateway", Logger: logger, Metrics: httpMetrics,
			MaxBodyBytes: cfg.MaxBodyBytes}),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	if a.addrs.HTTP, err = a.group.AddHTTP("http", cfg.HTTPAddr, gw); err != nil {
		return nil, err
	}

	admin := http.NewServeMux()
	admin.Handle("GET /metrics", metrics.Handler(reg))
	a.health.Register(admin)
	admin.Handle("GET /debug/breakers", a.clients)
	if cfg.Pprof {
		admin.HandleFunc("/debug/pprof/", pprof.Index)
		admin.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		admin.HandleFunc("/debug/pprof/profile", pprof.Profile)
		admin.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		admin.HandleFunc("/debug/pprof/trace", pprof.Trace)
		logger.Warn("pprof enabled on the admin port")
	}
	adminSrv := &http.Server{
		Handler: httpchain.Wrap(admin, httpchain.Options{Server: "admin", Logger: logger, Metrics: httpMetrics,
			MaxBodyBytes: 1 << 10, Quiet: func(string) bool { return true }}),
		ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 90 * time.Second, IdleTimeout: 2 * time.Minute,
	}
	if a.addrs.Admin, err = a.group.AddHTTP("admin", cfg.AdminAddr, adminSrv, server.StopLast()); err != nil {
		return nil, err
	}
	ok = true
	return a, nil
}

func (a *App) authenticator() (*auth.Authenticator, error) {
	var (
		jwt  *auth.JWTVerifier
		keys *auth.APIKeys
		err  error
	)
	switch {
	case a.cfg.DevMode:
		signer, err := auth.NewDevSigner("msctl-dev", a.cfg.JWTAudience)
		if err != nil {
			return nil, err
		}
		if jwt, err = signer.Verifier(); err != nil {
			return nil, err
		}
		if a.devToken, err = signer.Token("dev", []string{"admin"}, 24*time.Hour); err != nil {
			return nil, err
		}
		a.logger.Warn("AUTH DEV MODE: tokens are signed by a key generated at start-up; never use in production")
	case a.cfg.JWTPublicKeyFile != "" || a.cfg.JWKSFile != "":
		jwt, err = auth.NewJWTVerifier(auth.JWTConfig{PublicKeyFile: a.cfg.JWTPublicKeyFile, JWKSFile: a.cfg.JWKSFile,
			Issuer: a.cfg.JWTIssuer, Audience: a.cfg.JWTAudience})
		if err != nil {
			return nil, err
		}
	}
	if a.cfg.APIKeysFile != "" {
		if keys, err = auth.LoadAPIKeys(a.cfg.APIKeysFile); err != nil {
			return nil, err
		}
	}
	if jwt == nil && keys == nil {
		a.logger.Warn("no JWT key and no API keys configured: every API call is refused (401); " +
			"set AUTH_JWT_PUBLIC_KEY_FILE, AUTH_JWKS_FILE or AUTH_API_KEYS_FILE, or run with --dev locally")
	}
	return auth.New(orderapi.Policy, jwt, keys, a.logger), nil
}

// Addrs returns the bound addresses (useful with port 0).
func (a *App) Addrs() Addrs { return a.addrs }

// DevToken is the admin token minted in dev mode, "" otherwise.
func (a *App) DevToken() string { return a.devToken }

// Run serves until ctx ends, then drains: readiness off, open streams told
// to reconnect, ShutdownDelay of continued service, then the gRPC and HTTP
// servers stop gracefully within ShutdownGrace, the admin port last, and
// the database closes.
func (a *App) Run(ctx context.Context) error {
	bg, stopBG := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if a.openStore(bg) {
			a.saga.ResumeEvery(bg, a.cfg.ResumeInterval)
		}
	}()
	go func() { defer wg.Done(); a.health.Run(bg, a.cfg.ReadinessInterval, a.cfg.ReadinessTimeout) }()

	err := a.group.Serve(ctx, a.cfg.ShutdownGrace, func() {
		a.logger.Info("shutting down: readiness off, draining", "delay", a.cfg.ShutdownDelay, "grace", a.cfg.ShutdownGrace)
		a.health.Drain()
		time.Sleep(a.cfg.ShutdownDelay)
	})
	stopBG()
	wg.Wait()
	_ = a.clients.Close()
	a.store.close()
	tctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if terr := a.tracing(tctx); terr != nil {
		a.logger.Warn("flushing traces", "error", terr)
	}
	a.logger.Info("stopped")
	return err
}

// openStore connects and migrates, retrying until it works or ctx ends
// (then it returns false): a database that is late at start-up keeps
// readiness off instead of crash-looping the pod.
func (a *App) openStore(ctx context.Context) bool {
	where := a.cfg.Database.Redacted()
	if a.cfg.DatabaseDefaulted {
		a.logger.Info("DATABASE_URL not set: using the local SQLite file", "path", a.cfg.Database.Path)
	}
	delay := 500 * time.Millisecond
	for {
		s, err := store.Open(ctx, a.cfg.Database)
		if err == nil {
			a.store.set(s)
			a.health.MarkStarted()
			a.health.RunChecks(ctx, a.cfg.ReadinessTimeout)
			a.logger.Info("database ready, migrations applied", "database", where)
			return true
		}
		a.logger.Error("opening database", "database", where, "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}
