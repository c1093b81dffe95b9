// Package host is the part of a service's wiring that every bundled
// service shares: the common environment (Config), tracing, the
// authenticator, the metrics registry, downstream clients, health, the
// gRPC server and its chain, the HTTP gateway and admin ports, and Run's
// order of start-up and drain: open the database in the background with
// retries, serve, drain, close, flush traces.
//
// A service's own app package builds its API on a Host and registers it;
// host never knows a service's API, domain or store, never exits the
// process and never reads flags.
package host

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	gwruntime "github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/buildinfo"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/downstream"
	"github.com/msctl/msctl/services/kit/fault"
	"github.com/msctl/msctl/services/kit/gateway"
	"github.com/msctl/msctl/services/kit/grpcchain"
	"github.com/msctl/msctl/services/kit/health"
	"github.com/msctl/msctl/services/kit/httpchain"
	"github.com/msctl/msctl/services/kit/metrics"
	"github.com/msctl/msctl/services/kit/reload"
	"github.com/msctl/msctl/services/kit/server"
	"github.com/msctl/msctl/services/kit/storage"
	"github.com/msctl/msctl/services/kit/tracing"
)

// Spec is what a Host needs to know about the service it runs.
type Spec struct {
	// Name is the service's name in metrics, traces and logs.
	Name string
	// HealthService is the gRPC service whose health is reported, such as
	// userv1.UserService_ServiceDesc.ServiceName.
	HealthService string
	// Policy says which permission each RPC needs.
	Policy auth.Policy
}

// Addrs are the bound listen addresses.
type Addrs struct{ GRPC, HTTP, Admin net.Addr }

// Host is one service's process around its API: built by New, given its
// listeners by Listen, served by Run.
type Host struct {
	cfg         Config
	logger      *slog.Logger
	group       *server.Group
	health      *health.Checker
	clients     *downstream.Clients
	registry    *prometheus.Registry
	httpMetrics *metrics.HTTP
	chain       grpcchain.Options
	grpc        *grpc.Server
	inProcess   *grpcchain.InProcess
	// started is set once Run has opened the database; until then the
	// chain refuses the service's calls (grpcchain.Options.Starting).
	started  atomic.Bool
	tracing  tracing.Shutdown
	addrs    Addrs
	devToken string
	// keys re-reads the key files when a remounted Secret changes them.
	keys          *reload.Watcher
	downstreamKey *downstream.APIKey
}

// New sets up tracing, the authenticator, metrics, downstream clients,
// health and the gRPC server; nothing listens until Listen and nothing is
// served and the database is not touched until Run.
func New(ctx context.Context, spec Spec, cfg Config, logger *slog.Logger, lookup func(string) (string, bool)) (*Host, error) {
	h := &Host{cfg: cfg, logger: logger}
	// The key files first: a bad one is a configuration error, reported
	// before anything else is set up or logged.
	authn, err := h.authenticator(spec.Policy)
	if err != nil {
		return nil, err
	}
	shutdown, traced, err := tracing.Setup(ctx, lookup, spec.Name, buildinfo.Version(), logger)
	if err != nil {
		return nil, err
	}
	h.tracing = shutdown
	logger.Info("tracing", "exporting", traced)

	h.registry = metrics.NewRegistry(buildinfo.Version(), buildinfo.Commit())
	h.httpMetrics = metrics.NewHTTP(h.registry)
	// Every service gets clients, even with no dependencies, so every
	// admin port serves /debug/breakers and looks the same to operators.
	h.clients = downstream.New(h.registry, spec.Name)
	h.health = health.New(logger, spec.HealthService)

	flt := fault.Injector{ErrorRate: cfg.FaultErrorRate, Delay: cfg.FaultDelay}
	if flt.Enabled() {
		logger.Warn("fault injection on", "error_rate", flt.ErrorRate, "delay", flt.Delay)
	}
	h.chain = grpcchain.Options{Logger: logger, Metrics: metrics.NewGRPC(h.registry), Auth: authn, Fault: flt,
		Starting: h.starting}
	h.inProcess = grpcchain.NewInProcess(h.chain)
	opts := grpcchain.ServerOptions(h.chain)
	// Reusing stream goroutines keeps their grown stacks: the SQLite driver
	// runs deep, and growing a fresh stack per call showed in profiles.
	opts = append(opts, grpc.NumStreamWorkers(uint32(8*runtime.GOMAXPROCS(0))))
	h.grpc = grpc.NewServer(opts...)
	healthpb.RegisterHealthServer(h.grpc, h.health.GRPC())
	return h, nil
}

func (h *Host) authenticator(policy auth.Policy) (*auth.Authenticator, error) {
	var (
		jwt      *auth.JWTVerifier
		keys     *auth.APIKeys
		err      error
		jwtFiles []string
	)
	switch {
	case h.cfg.DevMode:
		signer, err := auth.NewDevSigner("msctl-dev", h.cfg.JWTAudience)
		if err != nil {
			return nil, err
		}
		if jwt, err = signer.Verifier(); err != nil {
			return nil, err
		}
		if h.devToken, err = signer.Token("dev", []string{"admin"}, 24*time.Hour); err != nil {
			return nil, err
		}
		h.logger.Warn("AUTH DEV MODE: tokens are signed by a key generated at start-up; never use in production")
	case h.cfg.JWTPublicKeyFile != "" || h.cfg.JWKSFile != "":
		jwtFiles = slices.DeleteFunc([]string{h.cfg.JWTPublicKeyFile, h.cfg.JWKSFile}, func(p string) bool { return p == "" })
		// Each file is loaded on its own first, so a bad one is blamed on
		// its variable: an unreadable key file is a configuration error
		// (exit 2), not a start-up failure.
		files := []struct{ name, path string }{{"AUTH_JWT_PUBLIC_KEY_FILE", h.cfg.JWTPublicKeyFile}, {"AUTH_JWKS_FILE", h.cfg.JWKSFile}}
		cfg := auth.JWTConfig{Issuer: h.cfg.JWTIssuer, Audience: h.cfg.JWTAudience}
		for _, f := range files {
			if f.path == "" {
				continue
			}
			one := cfg
			if f.name == "AUTH_JWKS_FILE" {
				one.JWKSFile = f.path
			} else {
				one.PublicKeyFile = f.path
			}
			if _, err := auth.NewJWTVerifier(one); err != nil {
				return nil, config.Invalid(f.name, unprefixed(err))
			}
		}
		cfg.PublicKeyFile, cfg.JWKSFile = h.cfg.JWTPublicKeyFile, h.cfg.JWKSFile
		if jwt, err = auth.NewJWTVerifier(cfg); err != nil {
			return nil, err
		}
	}
	if h.cfg.APIKeysFile != "" {
		if keys, err = auth.LoadAPIKeys(h.cfg.APIKeysFile); err != nil {
			return nil, config.Invalid("AUTH_API_KEYS_FILE", unprefixed(err))
		}
	}
	if h.cfg.DownstreamAPIKeyFile != "" {
		if h.downstreamKey, err = downstream.LoadAPIKey(h.cfg.DownstreamAPIKeyFile); err != nil {
			return nil, config.Invalid("DOWNSTREAM_API_KEY_FILE", unprefixed(err))
		}
	}
	if jwt == nil && keys == nil {
		h.logger.Warn("no JWT key and no API keys configured: every API call is refused (401); " +
			"set AUTH_JWT_PUBLIC_KEY_FILE, AUTH_JWKS_FILE or AUTH_API_KEYS_FILE, or run with --dev locally")
	}
	authn := auth.New(policy, jwt, keys, h.logger).WithLimits(h.cfg.Limits)
	h.keys = reload.New(h.logger, h.reloadable(authn, jwtFiles)...)
	return authn, nil
}

// reloadable are the key files Run keeps current: each is loaded again
// when its content changes, and swapped in whole if it loads.
func (h *Host) reloadable(authn *auth.Authenticator, jwtFiles []string) []reload.File {
	var files []reload.File
	if len(jwtFiles) > 0 {
		cfg := auth.JWTConfig{PublicKeyFile: h.cfg.JWTPublicKeyFile, JWKSFile: h.cfg.JWKSFile, Issuer: h.cfg.JWTIssuer, Audience: h.cfg.JWTAudience}
		files = append(files, reload.File{Name: "AUTH_JWT_PUBLIC_KEY_FILE, AUTH_JWKS_FILE", Paths: jwtFiles, Apply: func() error {
			v, err := auth.NewJWTVerifier(cfg)
			if err == nil {
				authn.SetJWT(v)
			}
			return err
		}})
	}
	if h.cfg.APIKeysFile != "" {
		files = append(files, reload.File{Name: "AUTH_API_KEYS_FILE", Paths: []string{h.cfg.APIKeysFile}, Apply: func() error {
			k, err := auth.LoadAPIKeys(h.cfg.APIKeysFile)
			if err == nil {
				authn.SetAPIKeys(k)
			}
			return err
		}})
	}
	if h.downstreamKey != nil {
		files = append(files, reload.File{Name: "DOWNSTREAM_API_KEY_FILE", Paths: []string{h.cfg.DownstreamAPIKeyFile}, Apply: h.downstreamKey.Reload})
	}
	return files
}

// unprefixed drops the "auth: " that auth's errors start with, which
// says nothing once the variable is named.
func unprefixed(err error) error {
	if msg, ok := strings.CutPrefix(err.Error(), "auth: "); ok {
		return &relabelled{msg: msg, err: err}
	}
	return err
}

// relabelled changes an error's message and keeps its chain (errors.Is
// still finds fs.ErrNotExist).
type relabelled struct {
	msg string
	err error
}

func (r *relabelled) Error() string { return r.msg }
func (r *relabelled) Unwrap() error { return r.err }

// Close releases what New and Listen opened (listeners, downstream
// connections, the trace exporter), for a service whose construction
// failed after New; Run releases them itself on its way out.
func (h *Host) Close() {
	if h.group != nil {
		h.group.Close()
	}
	_ = h.clients.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.tracing(ctx); err != nil {
		h.logger.Warn("flushing traces", "error", err)
	}
}

// RegisterService registers a service's API, before Listen, on the gRPC
// server and on the in-process connection the HTTP gateway calls (see
// Gateway.Register), so a service registers it once with its generated
// RegisterXServer(h, api).
func (h *Host) RegisterService(desc *grpc.ServiceDesc, impl any) {
	h.grpc.RegisterService(desc, impl)
	h.inProcess.RegisterService(desc, impl)
}

// starting is the chain's Starting: storage.ErrNotStarted until Run has
// opened the database.
func (h *Host) starting() error {
	if h.started.Load() {
		return nil
	}
	return storage.ErrNotStarted
}

// Registry is where the service registers its own metrics.
func (h *Host) Registry() *prometheus.Registry { return h.registry }

// Clients dials the service's dependencies with timeout, retry and a
// circuit breaker; Run closes them after the servers stop.
func (h *Host) Clients() *downstream.Clients { return h.clients }

// Health is the readiness checker; Run adds the "database" check.
func (h *Host) Health() *health.Checker { return h.health }

// Addrs returns the bound addresses (useful with port 0) once Listen has
// run.
func (h *Host) Addrs() Addrs { return h.addrs }

// DevToken is the admin token minted in dev mode, "" otherwise.
func (h *Host) DevToken() string { return h.devToken }

// DownstreamKey is the API key to call dependencies with
// (DOWNSTREAM_API_KEY_FILE), kept current as the file changes; nil when
// the service has none.
func (h *Host) DownstreamKey() credentials.PerRPCCredentials {
	if h.downstreamKey == nil {
		return nil
	}
	return h.downstreamKey
}

// Gateway is what the HTTP port serves.
type Gateway struct {
	// Register adds the service's HTTP/JSON routes with its generated
	// RegisterXHandlerClient on conn, which calls the API registered with
	// RegisterService in process, behind the gRPC server's chain.
	Register func(ctx context.Context, mux *gwruntime.ServeMux, conn grpc.ClientConnInterface) error
	// Wrap, if set, wraps the gateway inside the kit's HTTP middleware.
	Wrap func(http.Handler) http.Handler
}

// Listen opens the gRPC, HTTP gateway and admin listeners; on an error it
// closes whatever it opened.
func (h *Host) Listen(ctx context.Context, gw Gateway) (err error) {
	h.group = server.New(h.logger)
	defer func() {
		if err != nil {
			h.group.Close()
		}
	}()
	if h.addrs.GRPC, err = h.group.AddGRPC("grpc", h.cfg.GRPCAddr, h.grpc); err != nil {
		return err
	}

	mux := gateway.NewMux()
	if err := gw.Register(ctx, mux, h.inProcess); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	var handler http.Handler = mux
	if gw.Wrap != nil {
		handler = gw.Wrap(handler)
	}
	gwSrv := &http.Server{
		Handler: httpchain.Wrap(handler, httpchain.Options{Server: "gateway", Logger: h.logger, Metrics: h.httpMetrics,
			MaxBodyBytes: h.cfg.MaxBodyBytes}),
		ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
	}
	if h.addrs.HTTP, err = h.group.AddHTTP("http", h.cfg.HTTPAddr, gwSrv); err != nil {
		return err
	}

	admin := http.NewServeMux()
	admin.Handle("GET /metrics", metrics.Handler(h.registry))
	h.health.Register(admin)
	admin.Handle("GET /debug/breakers", h.clients)
	if h.cfg.Pprof {
		admin.HandleFunc("/debug/pprof/", pprof.Index)
		admin.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		admin.HandleFunc("/debug/pprof/profile", pprof.Profile)
		admin.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		admin.HandleFunc("/debug/pprof/trace", pprof.Trace)
		h.logger.Warn("pprof enabled on the admin port")
	}
	adminSrv := &http.Server{
		Handler: httpchain.Wrap(admin, httpchain.Options{Server: "admin", Logger: h.logger, Metrics: h.httpMetrics,
			MaxBodyBytes: 1 << 10, Quiet: func(string) bool { return true }}),
		ReadHeaderTimeout: 5 * time.Second, WriteTimeout: 90 * time.Second, IdleTimeout: 2 * time.Minute,
	}
	// The admin port stops last, so probes and scrapes see the drain.
	if h.addrs.Admin, err = h.group.AddHTTP("admin", h.cfg.AdminAddr, adminSrv, server.StopLast()); err != nil {
		return err
	}
	return nil
}
