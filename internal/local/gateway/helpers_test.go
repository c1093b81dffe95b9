package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// loadProject is the bundled project, whose routes render turns into the
// VirtualServices the gateway routes by: user, inventory and order
// exposed on path prefixes, payment only inside the mesh.
func loadProject(t testing.TB) *config.Project {
	t.Helper()
	l, err := config.Load("../../../msctl.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return l.Project
}

// process is one test upstream: an HTTP server that says who it is and
// a gRPC health server, both real, on loopback.
type process struct {
	name    string
	http    *httptest.Server
	grpc    *grpc.Server
	health  *health.Server
	backend Backend
	// requests counts what the HTTP server received; last is the last one.
	requests atomic.Int64
	last     atomic.Pointer[http.Request]
	bodies   chan []byte
}

// Headers the test HTTP server obeys.
const (
	statusHeader = "X-Test-Status" // answer with this status
	sleepHeader  = "X-Test-Sleep"  // wait this long first
)

func startProcess(t testing.TB, name string) *process {
	t.Helper()
	p := &process{name: name, bodies: make(chan []byte, 16)}
	p.http = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		p.last.Store(r.Clone(context.Background()))
		select {
		case p.bodies <- body:
		default:
		}
		if d, err := time.ParseDuration(r.Header.Get(sleepHeader)); err == nil {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("X-Served-By", name)
		if code, err := strconv.Atoi(r.Header.Get(statusHeader)); err == nil {
			w.WriteHeader(code)
		}
		if len(body) > 0 {
			w.Write(body)
			return
		}
		fmt.Fprint(w, name)
	}))
	t.Cleanup(p.http.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.grpc = grpc.NewServer()
	p.health = health.NewServer()
	// The overall status says who answers: SERVING the stable,
	// NOT_SERVING the canary.
	status := healthpb.HealthCheckResponse_SERVING
	if name == "canary" {
		status = healthpb.HealthCheckResponse_NOT_SERVING
	}
	p.health.SetServingStatus("", status)
	healthpb.RegisterHealthServer(p.grpc, p.health)
	go p.grpc.Serve(ln)
	t.Cleanup(p.grpc.Stop)
	p.backend = Backend{HTTP: p.http.Listener.Addr().String(), GRPC: ln.Addr().String()}
	return p
}

// testGateway is a gateway serving its edge and every service's mesh
// listener on loopback, with user and payment on stable and canary test
// processes.
type testGateway struct {
	*Gateway
	reg            *prometheus.Registry
	edge           string            // host:port
	mesh           map[string]string // service -> host:port
	stable, canary *process
}

func startGateway(t testing.TB, p *config.Project) *testGateway {
	t.Helper()
	reg := prometheus.NewRegistry()
	g, err := New(p, Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	tg := &testGateway{Gateway: g, reg: reg, mesh: map[string]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	serve := func(h http.Handler) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- Serve(ctx, ln, h) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
		})
		return ln.Addr().String()
	}
	tg.edge = serve(g.Edge())
	for _, name := range p.ServiceNames() {
		tg.mesh[name] = serve(g.Mesh(name))
	}
	tg.stable, tg.canary = startProcess(t, "stable"), startProcess(t, "canary")
	for _, name := range []string{"user", "payment"} {
		if err := g.SetBackends(name, tg.stable.backend, tg.canary.backend); err != nil {
			t.Fatal(err)
		}
	}
	return tg
}

// get sends a request to addr and returns who served it and the status.
func get(t testing.TB, c *http.Client, addr, path string, header http.Header) (servedBy string, code int) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, "http://"+addr+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Header.Get("X-Served-By"), resp.StatusCode
}

func dialGRPC(t testing.TB, addr string, opts ...grpc.DialOption) healthpb.HealthClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return healthpb.NewHealthClient(conn)
}

// count sums istio_requests_total over the series that have every one of
// labels.
func count(t testing.TB, reg *prometheus.Registry, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, f := range families {
		if f.GetName() != "istio_requests_total" {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			have := map[string]string{}
			for _, l := range m.GetLabel() {
				have[l.GetName()] = l.GetValue()
			}
			for k, v := range labels {
				if have[k] != v {
					continue series
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// eventually polls cond every 20 ms until it holds or 5 s pass.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
