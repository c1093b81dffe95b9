package local

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/filelock"
	"github.com/msctl/msctl/internal/local/gateway"
	"github.com/msctl/msctl/internal/local/promserver"
	"github.com/msctl/msctl/internal/routes"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Options configure a supervisor.
type Options struct {
	Project *config.Project
	// Root is the directory of msctl.yaml; services' paths are relative to it.
	Root string
	// RunDir holds binaries, data, logs, keys and the record; default
	// RunDir(Root).
	RunDir string
	// PortBase is the first port of the layout; default DefaultPortBase.
	PortBase int
	// Services to run; empty means all. The services they call are added.
	Services []string
	// ReadyTimeout bounds each process's start; default 30 s.
	ReadyTimeout time.Duration
	// Grace is how long a stopping process may drain; default 5 s.
	Grace time.Duration
	// ScrapeInterval is the metrics engine's; default 1 s.
	ScrapeInterval time.Duration
	// Log receives the supervisor's own events (starts, restarts, stops).
	Log *slog.Logger
}

func (o *Options) defaults() {
	if o.RunDir == "" {
		o.RunDir = RunDir(o.Root)
	}
	if o.PortBase == 0 {
		o.PortBase = DefaultPortBase
	}
	if o.ReadyTimeout <= 0 {
		o.ReadyTimeout = 30 * time.Second
	}
	if o.Grace <= 0 {
		o.Grace = 5 * time.Second
	}
	if o.ScrapeInterval <= 0 {
		o.ScrapeInterval = time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
}

// Supervisor runs the project's services, the gateway in front of them
// and the metrics engine, until it is closed.
type Supervisor struct {
	o       Options
	dir     paths
	lay     layout
	lock    *filelock.Lock
	keys    *keys
	token   string
	gw      *gateway.Gateway
	prom    *promserver.Server
	started time.Time

	cancel    context.CancelFunc
	servers   sync.WaitGroup
	closeOnce sync.Once

	mu       sync.Mutex // guards services' processes and closing
	closing  bool       // set by Close: no process starts after it
	recordMu sync.Mutex // orders the record's writes
	names    []string   // in start order
	services map[string]*serviceProcs
}

// serviceProcs is one service's processes; ops serialises canary operations.
type serviceProcs struct {
	cfg    *config.Service
	index  int
	ops    sync.Mutex
	stable *process
	canary *process
}

// Start checks every port, then starts the gateway, the metrics engine,
// the control API and each service in dependency order, and returns once
// every service is ready. Binaries must be built (see Build). On error
// nothing is left running.
func Start(ctx context.Context, o Options) (_ *Supervisor, err error) {
	o.defaults()
	order, err := o.Project.Closure(o.Services)
	if err != nil {
		return nil, err
	}
	if err := CheckPortBase(o.PortBase, len(o.Project.Services)); err != nil {
		return nil, err
	}
	s := &Supervisor{o: o, dir: paths(o.RunDir), lay: layout(o.PortBase), names: order, services: map[string]*serviceProcs{}, started: time.Now()}
	for _, d := range []string{o.RunDir, s.dir.logs(), s.dir.data()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// The databases, logs and canary state are the user's alone, whoever
	// created the directory first (a build makes it 0755).
	if err := os.Chmod(o.RunDir, 0o700); err != nil {
		return nil, err
	}
	if s.lock, err = filelock.TryAcquire(s.dir.lock()); err != nil {
		if errors.Is(err, filelock.ErrLocked) {
			return nil, errAlreadyRunning(o.RunDir)
		}
		return nil, err
	}
	runCtx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	// A supervisor killed before it could stop its services left them
	// running; stop them before their ports are needed.
	if old, err := readRecord(o.RunDir); err == nil {
		for _, id := range old.processes() {
			if id.alive() {
				o.Log.Warn("stopping a process left by a supervisor that is gone", "pid", id.PID)
				stopProcess(id, o.Grace)
			}
		}
		_ = os.Remove(s.dir.record())
	}

	uses := []portUse{{s.lay.edge(), "gateway"}, {s.lay.metrics(), "metrics API"}, {s.lay.control(), "control API"}}
	for i, svc := range o.Project.Services {
		uses = append(uses, portUse{s.lay.mesh(i), svc.Name + " mesh listener"})
		for slot := range 2 {
			p := s.lay.slot(i, slot)
			uses = append(uses, portUse{p.HTTP, svc.Name + " HTTP"}, portUse{p.GRPC, svc.Name + " gRPC"}, portUse{p.Admin, svc.Name + " admin"})
		}
	}
	if err := checkPorts(uses); err != nil {
		return nil, err
	}

	if s.keys, err = newKeys(s.dir.keys()); err != nil {
		return nil, err
	}
	s.token = randomKey()
	if err := writeToken(s.dir.token(), s.token); err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if s.gw, err = gateway.New(o.Project, gateway.Options{Log: o.Log, Registerer: reg, Namespace: o.Project.Namespace}); err != nil {
		return nil, err
	}
	if s.prom, err = promserver.Open(s.dir.metrics(), promserver.Options{ScrapeInterval: o.ScrapeInterval, Retention: 24 * time.Hour, Log: slog.New(warnings{o.Log.Handler()})}); err != nil {
		return nil, err
	}

	control := http.NewServeMux()
	control.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	control.Handle("/v1/", s.controlAPI())
	type listener struct {
		port int
		h    http.Handler
	}
	listeners := []listener{{s.lay.edge(), s.gw.Edge()}, {s.lay.metrics(), s.prom.Handler()}, {s.lay.control(), control}}
	for i, svc := range o.Project.Services {
		listeners = append(listeners, listener{s.lay.mesh(i), s.gw.Mesh(svc.Name)})
	}
	for _, sv := range listeners {
		ln, err := net.Listen("tcp", addr(sv.port))
		if err != nil {
			return nil, fmt.Errorf("port %d: %w", sv.port, err)
		}
		s.servers.Add(1)
		go func() {
			defer s.servers.Done()
			if err := gateway.Serve(runCtx, ln, sv.h); err != nil && runCtx.Err() == nil {
				o.Log.Error("listener failed", "port", sv.port, "err", err.Error())
			}
		}()
	}
	s.servers.Add(1)
	go func() {
		defer s.servers.Done()
		if err := s.prom.Run(runCtx); err != nil && runCtx.Err() == nil {
			o.Log.Error("metrics engine failed", "err", err.Error())
		}
	}()

	for _, name := range order {
		s.services[name] = &serviceProcs{cfg: o.Project.Service(name), index: slices.Index(o.Project.ServiceNames(), name)}
	}
	for _, group := range o.Project.Levels(order) {
		errs := make([]error, len(group))
		var wg sync.WaitGroup
		for i, name := range group {
			wg.Go(func() { errs[i] = s.startStable(ctx, s.services[name]) })
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	s.changed()
	return s, nil
}

// warnings passes on a handler's warnings and errors only: the metrics
// engine's start-up chatter stays out of the supervisor's log.
type warnings struct{ slog.Handler }

func (w warnings) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= slog.LevelWarn && w.Handler.Enabled(ctx, l)
}
func (w warnings) WithAttrs(a []slog.Attr) slog.Handler { return warnings{w.Handler.WithAttrs(a)} }
func (w warnings) WithGroup(g string) slog.Handler      { return warnings{w.Handler.WithGroup(g)} }

func errAlreadyRunning(runDir string) error {
	msg := fmt.Sprintf("msctl up is already running in %s", runDir)
	if r, err := readRecord(runDir); err == nil && r.Supervisor.alive() {
		msg += fmt.Sprintf(" (supervisor pid %d)", r.Supervisor.PID)
	}
	return errors.New(msg + "; stop it with msctl down")
}

func writeToken(path, token string) error {
	return os.WriteFile(path, []byte(token), 0o600)
}

// startStable starts a service's stable process from its built binary and
// points the gateway at it.
func (s *Supervisor) startStable(ctx context.Context, svc *serviceProcs) error {
	p := s.newProcess(svc, Stable, 0, ProcessSpec{})
	p.binary = s.dir.bin(svc.cfg.Name)
	_ = os.Truncate(p.logPath, 0) // its log tells of this run only
	// Recorded from its first moment, so that Down finds it even if the
	// supervisor dies while it starts.
	s.mu.Lock()
	svc.stable = p
	s.mu.Unlock()
	if err := p.start(ctx, s.o.ReadyTimeout); err != nil {
		return err
	}
	return s.gw.SetBackends(svc.cfg.Name, backend(p), gateway.Backend{})
}

func backend(p *process) gateway.Backend {
	if p == nil {
		return gateway.Backend{}
	}
	return gateway.Backend{HTTP: addr(p.ports.HTTP), GRPC: addr(p.ports.GRPC)}
}

// newProcess prepares a process of svc in one of its two port slots.
func (s *Supervisor) newProcess(svc *serviceProcs, role Role, slot int, spec ProcessSpec) *process {
	name := svc.cfg.Name
	ports := s.lay.slot(svc.index, slot)
	env := map[string]string{}
	for _, k := range []string{"PATH", "HOME", "TMPDIR", "TZ", "LANG"} {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	maps.Copy(env, svc.cfg.Env)
	env["HTTP_ADDR"] = addr(ports.HTTP)
	env["GRPC_ADDR"] = addr(ports.GRPC)
	env["ADMIN_ADDR"] = addr(ports.Admin)
	env["DATABASE_URL"] = "sqlite://" + s.dir.db(name)
	maps.Copy(env, s.keys.env(svc.cfg.Calls))
	for _, c := range svc.cfg.Calls {
		// Calls go through the callee's mesh listener, so a canary's
		// split applies to them as to the edge's requests.
		env[envName(c)+"_ADDR"] = addr(s.lay.mesh(slices.Index(s.o.Project.ServiceNames(), c)))
	}
	maps.Copy(env, spec.Env)
	var list []string
	for _, k := range slices.Sorted(maps.Keys(env)) {
		list = append(list, k+"="+env[k])
	}
	return &process{
		service: name, role: role, slot: slot, ports: ports, spec: spec, env: list,
		logPath: s.dir.serviceLog(name, role),
		changed: s.changed,
		log:     func(msg string, args ...any) { s.o.Log.Warn(msg, args...) },
		stopCh:  make(chan struct{}), done: make(chan struct{}),
	}
}

// envName is a service name as an environment variable's prefix.
func envName(service string) string {
	return strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(service))
}

// changed records the current state and hands the metrics engine its
// targets; called after every process event.
func (s *Supervisor) changed() {
	s.recordMu.Lock()
	defer s.recordMu.Unlock()
	st := s.Status()
	targets := []promserver.Target{{Job: "gateway", Instance: addr(s.lay.control()), URL: "http://" + addr(s.lay.control()) + "/metrics", HonorLabels: true}}
	for _, svc := range st.Services {
		for role, in := range map[Role]*Instance{Stable: svc.Stable, Canary: svc.Canary} {
			if in != nil {
				targets = append(targets, promserver.Target{
					Job: svc.Name, Instance: addr(in.Ports.Admin), URL: "http://" + addr(in.Ports.Admin) + "/metrics",
					Labels: map[string]string{"service": svc.Name, "track": string(role)},
				})
			}
		}
	}
	if err := s.prom.SetTargets(targets); err != nil {
		s.o.Log.Error("metrics targets", "err", err.Error())
	}
	r := &record{
		Supervisor: procID{PID: os.Getpid(), Start: processStart(os.Getpid())},
		Started:    s.started, Control: "http://" + addr(s.lay.control()),
		GatewayURL: st.GatewayURL, MetricsURL: st.MetricsURL, Services: st.Services,
	}
	if err := writeRecord(s.o.RunDir, r); err != nil {
		s.o.Log.Error("could not record the supervisor's state", "err", err.Error())
	}
}

// Status reports every service's processes and traffic.
func (s *Supervisor) Status() *Status {
	st := &Status{
		RunDir: s.o.RunDir, Supervisor: os.Getpid(), Started: s.started,
		GatewayURL: "http://" + addr(s.lay.edge()), MetricsURL: "http://" + addr(s.lay.metrics()),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, name := range s.names {
		svc := s.services[name]
		ss := ServiceStatus{Name: name, MeshPort: s.lay.mesh(svc.index), Traffic: s.gw.Traffic(name)}
		if svc.stable != nil {
			ss.Stable = svc.stable.instance()
		}
		if svc.canary != nil {
			ss.Canary = svc.canary.instance()
		}
		st.Services = append(st.Services, ss)
	}
	return st
}

// Wait runs until ctx ends, then stops everything.
func (s *Supervisor) Wait(ctx context.Context) {
	<-ctx.Done()
	s.Close()
}

// Close stops the services (callers first), the listeners and the metrics
// engine, removes the record and releases the run directory.
func (s *Supervisor) Close() { s.closeOnce.Do(s.close) }

func (s *Supervisor) close() {
	s.mu.Lock()
	s.closing = true
	names := slices.Clone(s.names)
	s.mu.Unlock()
	slices.Reverse(names)
	for _, name := range names {
		svc := s.services[name]
		if svc == nil {
			continue
		}
		s.mu.Lock()
		procs := []*process{svc.canary, svc.stable}
		s.mu.Unlock()
		var wg sync.WaitGroup
		for _, p := range procs {
			if p != nil {
				wg.Go(func() { p.stop(s.o.Grace) })
			}
		}
		wg.Wait()
	}
	if s.cancel != nil {
		s.cancel()
	}
	s.servers.Wait()
	if s.prom != nil {
		if err := s.prom.Close(); err != nil {
			s.o.Log.Error("closing the metrics engine", "err", err.Error())
		}
	}
	if s.lock != nil {
		_ = os.Remove(s.dir.record())
		_ = os.Remove(s.dir.token())
		_ = s.lock.Release()
	}
}

// SetTraffic sets a service's split between its stable and its canary.
func (s *Supervisor) SetTraffic(service string, t routes.Traffic) error {
	// One operation at a time: traffic checked against a canary that a
	// StopCanary then removes would route to no backend.
	return s.withService(service, func(_ *serviceProcs, _, canary *process) error {
		if t.Running() && canary == nil {
			return errkind.BadInputf("%s has no canary to send traffic to; start one first", service)
		}
		if err := s.gw.SetTraffic(service, t); err != nil {
			return err
		}
		s.changed()
		return nil
	})
}

func (s *Supervisor) service(name string) (*serviceProcs, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	svc := s.services[name]
	if svc == nil {
		return nil, errkind.BadInputf("service %q does not run here (running: %s)", name, strings.Join(s.names, ", "))
	}
	return svc, nil
}

// StableSpec is what a service's stable process runs, its binary resolved.
func (s *Supervisor) StableSpec(service string) (ProcessSpec, error) {
	svc, err := s.service(service)
	if err != nil {
		return ProcessSpec{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	spec := svc.stable.spec
	spec.Binary = svc.stable.binary
	return spec, nil
}

// StartCanary starts a canary process of service in the slot the stable
// does not use and makes it the gateway's canary backend, once ready.
// Starting the canary that runs already does nothing.
func (s *Supervisor) StartCanary(ctx context.Context, service string, spec ProcessSpec) error {
	return s.withService(service, func(svc *serviceProcs, stable, canary *process) error {
		if canary != nil {
			if canary.spec.equal(spec) {
				return nil
			}
			return errkind.BadInputf("a canary of %s runs already with another spec (%s); stop it first", service, canary.spec.Revision)
		}
		binary := spec.Binary
		if binary == "" {
			binary = stable.binary
		}
		if fi, err := os.Stat(binary); err != nil || fi.IsDir() {
			return errkind.BadInputf("canary binary %s of %s: not an executable file", binary, service)
		}
		p := s.newProcess(svc, Canary, 1-stable.slot, spec)
		p.binary = binary
		if err := checkPorts([]portUse{{p.ports.HTTP, service + " canary HTTP"}, {p.ports.GRPC, service + " canary gRPC"}, {p.ports.Admin, service + " canary admin"}}); err != nil {
			return err
		}
		_ = os.Truncate(p.logPath, 0) // its log tells of this canary only
		s.mu.Lock()
		if s.closing {
			// Close has passed this service by: a process started now
			// would outlive the supervisor, unrecorded.
			s.mu.Unlock()
			return errors.New("the local supervisor is stopping")
		}
		svc.canary = p
		s.mu.Unlock()
		if err := p.start(ctx, s.o.ReadyTimeout); err != nil {
			s.mu.Lock()
			svc.canary = nil
			s.mu.Unlock()
			s.changed()
			return err
		}
		if err := s.gw.SetBackends(service, backend(stable), backend(p)); err != nil {
			return err
		}
		s.o.Log.Info("canary ready", "service", service, "pid", p.instance().PID, "revision", spec.Revision)
		s.changed()
		return nil
	})
}

// StopCanary sends all of a service's traffic to its stable and stops the
// canary process; with no canary it does nothing.
func (s *Supervisor) StopCanary(service string) error {
	return s.withService(service, func(svc *serviceProcs, stable, canary *process) error {
		if canary == nil {
			return nil
		}
		if err := s.gw.SetTraffic(service, routes.Traffic{}); err != nil {
			return err
		}
		if err := s.gw.SetBackends(service, backend(stable), gateway.Backend{}); err != nil {
			return err
		}
		canary.stop(s.o.Grace)
		s.mu.Lock()
		svc.canary = nil
		s.mu.Unlock()
		s.o.Log.Info("canary stopped", "service", service)
		s.changed()
		return nil
	})
}

// withService runs op on a service's processes, one operation at a time.
func (s *Supervisor) withService(name string, op func(svc *serviceProcs, stable, canary *process) error) error {
	svc, err := s.service(name)
	if err != nil {
		return err
	}
	svc.ops.Lock()
	defer svc.ops.Unlock()
	s.mu.Lock()
	stable, canary := svc.stable, svc.canary
	s.mu.Unlock()
	return op(svc, stable, canary)
}

// Promote makes a service's canary process its stable: the gateway sends
// everything to it before the old stable drains and stops, so no request
// finds no backend. With no canary it does nothing.
func (s *Supervisor) Promote(service string) error {
	return s.withService(service, func(svc *serviceProcs, old, canary *process) error {
		if canary == nil {
			return nil
		}
		// Both backends point at the new process while the split is reset, so
		// whatever the gateway reads in between reaches it.
		if err := s.gw.SetBackends(service, backend(canary), backend(canary)); err != nil {
			return err
		}
		if err := s.gw.SetTraffic(service, routes.Traffic{}); err != nil {
			return err
		}
		if err := s.gw.SetBackends(service, backend(canary), gateway.Backend{}); err != nil {
			return err
		}
		// The old stable stays in the record until it is gone, so that Down
		// finds it if the supervisor dies while it drains.
		old.stop(s.o.Grace)
		canary.mu.Lock()
		canary.role = Stable
		canary.mu.Unlock()
		s.mu.Lock()
		svc.stable, svc.canary = canary, nil
		s.mu.Unlock()
		s.changed()
		s.o.Log.Info("canary promoted", "service", service, "pid", canary.instance().PID, "revision", canary.spec.Revision)
		return nil
	})
}
