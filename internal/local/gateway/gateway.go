// Package gateway is msctl's local stand-in for Istio: a reverse proxy that
// routes a project's requests between each service's stable and canary
// processes by the VirtualService msctl applies in the cluster, and
// counts them in Istio's standard metrics, so that canary analysis runs its
// built-in queries unchanged.
//
// It owns the routing tables and the connections to the upstreams. It never
// writes routing rules of its own: every rule comes from
// routes.Route's VirtualService, so a route the cluster would not take, the
// gateway does not take either. It starts no processes and serves no
// metrics endpoint; the supervisor does both.
package gateway

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/routes"
	"github.com/prometheus/client_golang/prometheus"
)

// RouteValueHeader fixes a request's random draw, a number in [0, 100),
// for deterministic tests. A route's destinations take their shares in
// order, stable first, as Envoy takes them: at a canary weight of 10,
// values from 90 go to the canary. A value below the mirror percentage is
// mirrored. The gateway removes the header before forwarding.
const RouteValueHeader = "X-Msctl-Route-Value"

// Backend is where one process of a service listens: host:port of its
// HTTP and gRPC listeners.
type Backend struct{ HTTP, GRPC string }

// Options configure a Gateway.
type Options struct {
	// Log receives upstream errors at debug level; nil discards them.
	Log *slog.Logger
	// Registerer takes the Istio metrics; nil keeps them unregistered.
	Registerer prometheus.Registerer
	// Namespace is the metrics' workload namespace; default the
	// project's.
	Namespace string
}

// Gateway routes a project's requests. Its methods are safe to call while
// it serves.
type Gateway struct {
	project     *config.Project
	gatewayName string
	namespace   string     // of the metrics
	services    []*service // in the project's order, which the edge tries routes in
	byHost      map[string]*service
	log         *slog.Logger
	metrics     *metrics
	forwarder   *forwarder
}

// service is one service's routes and processes.
type service struct {
	name string
	dst  [2]destination // stable, canary
	// unreached are the tracks' Services as a caller records a request
	// that found no process.
	unreached [2]destination
	mu        sync.Mutex // serialises writers of state
	state     atomic.Pointer[state]
	mesh      *listener
}

// state is what a request of a service is routed by; replaced whole, never
// changed in place.
type state struct {
	traffic        routes.Traffic
	routes         compiled
	stable, canary Backend
}

func (st *state) backend(canary bool) Backend {
	if canary {
		return st.canary
	}
	return st.stable
}

// New builds a gateway for p's services, with no canary and no backends
// yet: requests answer 503 until SetBackends.
func New(p *config.Project, o Options) (*Gateway, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Namespace == "" {
		o.Namespace = p.Namespace
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, fmt.Errorf("gateway metrics: %v", err)
	}
	// The edge has no host names to serve locally, but render writes
	// gateway routes only for a project with some: give it one, so that a
	// project without hosts still has its routes on the edge.
	if len(p.Gateway.Hosts) == 0 {
		cp := *p
		cp.Gateway.Hosts = []string{"localhost"}
		p = &cp
	}
	g := &Gateway{
		project:     p,
		gatewayName: routes.GatewayName(p),
		namespace:   o.Namespace,
		byHost:      map[string]*service{},
		log:         o.Log,
		metrics:     m,
	}
	g.forwarder = newForwarder(g)
	for _, name := range p.ServiceNames() {
		s := &service{
			name:      name,
			dst:       [2]destination{newDestination(name, o.Namespace, false), newDestination(name, o.Namespace, true)},
			unreached: [2]destination{unreached(name, o.Namespace, false), unreached(name, o.Namespace, true)},
		}
		s.mesh = &listener{g: g, only: s, source: unknownSource()}
		g.services = append(g.services, s)
		g.byHost[name] = s
		g.byHost[name+"."+p.Namespace+".svc.cluster.local"] = s
		table, err := g.compile(name, routes.Traffic{})
		if err != nil {
			return nil, err
		}
		s.state.Store(&state{routes: table})
	}
	return g, nil
}

func (g *Gateway) compile(name string, t routes.Traffic) (compiled, error) {
	r, err := routes.For(g.project, name, t)
	if err != nil {
		return compiled{}, err
	}
	table, err := compile(&r.VirtualService().Spec, g.gatewayName, r.CanaryHost())
	if err != nil {
		return compiled{}, fmt.Errorf("%s's VirtualService: %v", name, err)
	}
	return table, nil
}

func (g *Gateway) service(name string) (*service, error) {
	for _, s := range g.services {
		if s.name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("unknown service %q (the project has: %s)", name, strings.Join(g.project.ServiceNames(), ", "))
}

// update replaces s's state with change applied to a copy of it.
func (s *service) update(change func(*state) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	next := *s.state.Load()
	if err := change(&next); err != nil {
		return err
	}
	s.state.Store(&next)
	return nil
}

// SetBackends points service's stable and canary subsets at processes; a
// zero canary means none, and a request routed to it answers 503. Set a
// canary's backend before traffic that routes to it.
func (g *Gateway) SetBackends(service string, stable, canary Backend) error {
	s, err := g.service(service)
	if err != nil {
		return err
	}
	for _, b := range []Backend{stable, canary} {
		for _, addr := range []string{b.HTTP, b.GRPC} {
			if _, _, err := net.SplitHostPort(addr); addr != "" && err != nil {
				return fmt.Errorf("%s: backend address %q: %v", service, addr, err)
			}
		}
	}
	return s.update(func(st *state) error {
		st.stable, st.canary = stable, canary
		return nil
	})
}

// SetTraffic routes service's requests by t from the next request on,
// atomically. Bad traffic (as render refuses it) is an error and changes
// nothing.
func (g *Gateway) SetTraffic(service string, t routes.Traffic) error {
	s, err := g.service(service)
	if err != nil {
		return err
	}
	table, err := g.compile(service, t)
	if err != nil {
		return err
	}
	return s.update(func(st *state) error {
		st.traffic, st.routes = t, table
		return nil
	})
}

// Traffic is service's current traffic; the zero value for an unknown
// service.
func (g *Gateway) Traffic(service string) routes.Traffic {
	s, err := g.service(service)
	if err != nil {
		return routes.Traffic{}
	}
	return s.state.Load().traffic
}

// Edge is the handler of the project's public port: the Istio gateway's
// routes (msctl.yaml's routes), and, for a request whose host is a
// service's name (say a gRPC client's authority "payment"), that service's
// mesh routes.
func (g *Gateway) Edge() http.Handler { return &listener{g: g, source: ingressSource()} }

// Mesh is the handler that stands for service's sidecars: the address its
// callers use. Their requests are counted with an unknown source.
func (g *Gateway) Mesh(service string) http.Handler {
	s, err := g.service(service)
	if err != nil {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, err.Error(), http.StatusNotFound)
		})
	}
	return s.mesh
}

// MeshFrom is Mesh for the calls of one caller, counted with caller as
// source_workload: give each caller its own listener to tell them apart.
func (g *Gateway) MeshFrom(caller, service string) http.Handler {
	s, err := g.service(service)
	if err != nil {
		return g.Mesh(service)
	}
	return &listener{g: g, only: s, source: serviceSource(caller, g.namespace)}
}

// listener routes the requests of one port: the edge's (only nil) or one
// service's mesh.
type listener struct {
	g      *Gateway
	only   *service
	source source
}

func (l *listener) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	value, err := drawOf(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if l.only != nil {
		st := l.only.state.Load()
		l.serve(w, r, l.only, st, st.routes.mesh, value)
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if s := l.g.byHost[host]; s != nil {
		st := s.state.Load()
		l.serve(w, r, s, st, st.routes.mesh, value)
		return
	}
	for _, s := range l.g.services {
		st := s.state.Load()
		for _, rt := range st.routes.edge {
			if rt.matches(r) {
				l.g.forwarder.forward(w, r, &l.source, s, st, rt, value)
				return
			}
		}
	}
	notFound(w, r)
}

func (l *listener) serve(w http.ResponseWriter, r *http.Request, s *service, st *state, routes []*route, value draw) {
	for _, rt := range routes {
		if rt.matches(r) {
			l.g.forwarder.forward(w, r, &l.source, s, st, rt, value)
			return
		}
	}
	notFound(w, r)
}

// notFound answers a request no route takes, as Envoy does: 404, or
// gRPC's Unimplemented.
func notFound(w http.ResponseWriter, r *http.Request) {
	if isGRPC(r) {
		grpcError(w, grpcUnimplemented, "no route for "+r.URL.Path)
		return
	}
	http.Error(w, "no route for "+r.URL.Path, http.StatusNotFound)
}

// draw is a request's random values in [0, 100): one for the weighted
// choice, one for mirroring.
type draw struct{ route, mirror float64 }

// drawOf draws for r, or reads RouteValueHeader, which then fixes both.
func drawOf(r *http.Request) (draw, error) {
	h := r.Header.Get(RouteValueHeader)
	if h == "" {
		return draw{rand.Float64() * 100, rand.Float64() * 100}, nil
	}
	r.Header.Del(RouteValueHeader)
	v, err := strconv.ParseFloat(h, 64)
	if err != nil || v < 0 || v >= 100 {
		return draw{}, fmt.Errorf("%s %q: want a number from 0 to below 100", RouteValueHeader, h)
	}
	return draw{v, v}, nil
}
