// Package app wires the payment service together: configuration, the kit's
// servers and chains, the store and the API. main only parses flags,
// handles signals and exits; tests run the same App on port 0.
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
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/buildinfo"
	"github.com/msctl/msctl/services/kit/downstream"
	"github.com/msctl/msctl/services/kit/fault"
	"github.com/msctl/msctl/services/kit/gateway"
	"github.com/msctl/msctl/services/kit/grpcchain"
	"github.com/msctl/msctl/services/kit/health"
	"github.com/msctl/msctl/services/kit/httpchain"
	"github.com/msctl/msctl/services/kit/metrics"
	"github.com/msctl/msctl/services/kit/server"
	"github.com/msctl/msctl/services/kit/tracing"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	"github.com/msctl/msctl/services/payment/internal/domain"
	"github.com/msctl/msctl/services/payment/internal/paymentapi"
	"github.com/msctl/msctl/services/payment/internal/store"
)

// Name is the service's name in metrics, traces and logs.
const Name = "payment"

// Addrs are the bound listen addresses.
type Addrs struct{ GRPC, HTTP, Admin net.Addr }

// App is one running payment service.
type App struct {
	cfg      Config
	logger   *slog.Logger
	group    *server.Group
	health   *health.Checker
	api      *paymentapi.Server
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
	// No dependencies yet; the breaker endpoint is served so every service's
	// admin port looks the same to operators.
	a.clients = downstream.New(reg, Name)
	a.health = health.New(logger, paymentv1.PaymentService_ServiceDesc.ServiceName)
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
	proc := domain.Processor{DeclineRate: cfg.DeclineRate, DeclineCards: cfg.DeclineCards}
	if proc.DeclineRate > 0 || len(proc.DeclineCards) > 0 {
		logger.Warn("simulated declines on", "decline_rate", proc.DeclineRate, "decline_cards", len(proc.DeclineCards))
	}
	a.api = paymentapi.New(a.store, logger, proc)
	paymentv1.RegisterPaymentServiceServer(grpcSrv, a.api)
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
	if err := paymentv1.RegisterPaymentServiceHandlerServer(ctx, mux, gwAPI); err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	gw := &http.Server{
		Handler: httpchain.Wrap(mux, httpchain.Options{Server: "gateway", Logger: logger, Metrics: httpMetrics,
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
	return auth.New(paymentapi.Policy, jwt, keys, a.logger), nil
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
	go func() { defer wg.Done(); a.openStore(bg) }()
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

// openStore connects and migrates, retrying until it works or ctx ends:
// a database that is late at start-up keeps readiness off instead of
// crash-looping the pod.
func (a *App) openStore(ctx context.Context) {
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
			return
		}
		a.logger.Error("opening database", "database", where, "error", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, 10*time.Second)
	}
}

// deferredStore is the Store until the database is open; calls before that
// fail with errNotStarted, which the API reports as Unavailable (503).
type deferredStore struct {
	p atomic.Pointer[store.Store]
}

func (d *deferredStore) set(s store.Store) { d.p.Store(&s) }

func (d *deferredStore) get() (store.Store, error) {
	if p := d.p.Load(); p != nil {
		return *p, nil
	}
	return nil, errNotStarted
}

func (d *deferredStore) close() {
	if s, err := d.get(); err == nil {
		s.Close()
	}
}
