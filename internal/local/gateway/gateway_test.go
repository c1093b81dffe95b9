package gateway

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/routes"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

func TestWeightsSplitTraffic(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	if err := tg.SetTraffic("user", routes.Traffic{Weight: 25}); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	c := &http.Client{}
	canary := 0
	for range n {
		by, code := get(t, c, tg.edge, "/api/v1/users/42", nil)
		if code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
		if by == "canary" {
			canary++
		}
	}
	share := 100 * float64(canary) / n
	if math.Abs(share-25) > 3 {
		t.Errorf("canary got %.1f%% of %d requests at weight 25; want 25 ± 3", share, n)
	}
	counted := count(t, tg.reg, map[string]string{"destination_workload": "user-canary", "response_code": "200", "source_workload": "istio-ingressgateway"})
	if counted != float64(canary) {
		t.Errorf("istio_requests_total for user-canary = %v, want %d", counted, canary)
	}
	if got := tg.Traffic("user"); got.Weight != 25 {
		t.Errorf("Traffic(user) = %+v", got)
	}
}

func TestRouteValueHeaderDecides(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	if err := tg.SetTraffic("user", routes.Traffic{Weight: 10}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{}
	for _, tt := range []struct {
		value, want string
		code        int
	}{
		// The stable takes its 90% first, as Envoy takes the route's
		// destinations in order.
		{"0", "stable", 200}, {"89.999", "stable", 200}, {"90", "canary", 200}, {"99.999", "canary", 200},
		{"100", "", 400}, {"-1", "", 400}, {"ten", "", 400},
	} {
		for range 3 {
			by, code := get(t, c, tg.edge, "/api/v1/users", http.Header{RouteValueHeader: {tt.value}})
			if by != tt.want || code != tt.code {
				t.Errorf("%s %s: served by %q with %d, want %q with %d", RouteValueHeader, tt.value, by, code, tt.want, tt.code)
			}
		}
	}
	if h := tg.canary.last.Load().Header.Get(RouteValueHeader); h != "" {
		t.Errorf("the upstream saw %s: %q", RouteValueHeader, h)
	}
}

func TestCanaryHeaderPinsInsideTheMeshOnly(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	c := &http.Client{}
	pin := http.Header{routes.CanaryHeader: {"true"}, RouteValueHeader: {"0"}}
	// No canary running: no pin either.
	if by, _ := get(t, c, tg.mesh["user"], "/", pin); by != "stable" {
		t.Errorf("pin without a canary: served by %q, want stable", by)
	}
	if err := tg.SetTraffic("user", routes.Traffic{Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if by, _ := get(t, c, tg.mesh["user"], "/", pin); by != "canary" {
		t.Errorf("pin on the mesh: served by %q, want canary", by)
	}
	if h := tg.canary.last.Load().Header.Get(routes.CanaryHeader); h != "true" {
		t.Errorf("the mesh removed the pin: %q", h)
	}
	// The edge removes the header (allowCanaryHeader is false).
	if by, _ := get(t, c, tg.edge, "/api/v1/users", pin); by != "stable" {
		t.Errorf("pin on the edge: served by %q, want stable", by)
	}
	if h := tg.stable.last.Load().Header.Get(routes.CanaryHeader); h != "" {
		t.Errorf("the edge forwarded %s: %q", routes.CanaryHeader, h)
	}
	// Unless the project allows it.
	p := loadProject(t)
	p.Gateway.AllowCanaryHeader = true
	tg = startGateway(t, p)
	if err := tg.SetTraffic("user", routes.Traffic{Weight: 1}); err != nil {
		t.Fatal(err)
	}
	if by, _ := get(t, c, tg.edge, "/api/v1/users", pin); by != "canary" {
		t.Errorf("pin on the edge with allowCanaryHeader: served by %q, want canary", by)
	}
}

func TestABMatchByHeaderAndCookie(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	match := &config.Match{Headers: map[string]config.StringMatch{"x-beta": {Exact: "yes"}}}
	if err := tg.SetTraffic("user", routes.Traffic{Match: match}); err != nil {
		t.Fatal(err)
	}
	c := &http.Client{}
	for _, tt := range []struct {
		name   string
		header http.Header
		want   string
	}{
		{"matching header", http.Header{"X-Beta": {"yes"}}, "canary"},
		{"other value", http.Header{"X-Beta": {"no"}}, "stable"},
		{"no header", nil, "stable"},
	} {
		for _, addr := range []string{tg.edge, tg.mesh["user"]} {
			if by, _ := get(t, c, addr, "/api/v1/users", tt.header); by != tt.want {
				t.Errorf("%s via %s: served by %q, want %q", tt.name, addr, by, tt.want)
			}
		}
	}

	if err := tg.SetTraffic("user", routes.Traffic{Match: &config.Match{Cookie: "canary=always"}}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		cookie, want string
	}{
		{"canary=always", "canary"},
		{"session=1; canary=always; theme=dark", "canary"},
		{"canary=never", "stable"},
		{"xcanary=always", "stable"},
	} {
		if by, _ := get(t, c, tg.edge, "/api/v1/users", http.Header{"Cookie": {tt.cookie}}); by != tt.want {
			t.Errorf("cookie %q: served by %q, want %q", tt.cookie, by, tt.want)
		}
	}
	// Bad traffic changes nothing.
	if err := tg.SetTraffic("user", routes.Traffic{Weight: 101}); err == nil {
		t.Error("weight 101: no error")
	}
	if got := tg.Traffic("user"); got.Match == nil || got.Match.Cookie != "canary=always" {
		t.Errorf("after a refused change, Traffic(user) = %+v", got)
	}
}

func TestEdgeRoutesByPathAndHost(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	c := &http.Client{}
	// payment has no routes: reachable on the edge only by its name.
	if _, code := get(t, c, tg.edge, "/payments", nil); code != http.StatusNotFound {
		t.Errorf("a path no route takes: %d, want 404", code)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+tg.edge+"/payments", nil)
	req.Host = "payment"
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("X-Served-By") != "stable" {
		t.Errorf("host payment: %d from %q", resp.StatusCode, resp.Header.Get("X-Served-By"))
	}
	if n := count(t, tg.reg, map[string]string{"destination_workload": "payment", "destination_service_name": "payment"}); n != 1 {
		t.Errorf("payment counted %v times, want 1", n)
	}
	// A caller's own mesh listener names it as the source.
	fromOrder := httptest.NewServer(tg.MeshFrom("order", "payment"))
	defer fromOrder.Close()
	if by, _ := get(t, c, strings.TrimPrefix(fromOrder.URL, "http://"), "/", nil); by != "stable" {
		t.Errorf("payment from order: served by %q", by)
	}
	if n := count(t, tg.reg, map[string]string{"destination_workload": "payment", "source_workload": "order", "source_workload_namespace": "shop"}); n != 1 {
		t.Errorf("payment's calls from order counted %v times, want 1", n)
	}
}

func TestHTTPBodyStreamsBothWays(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	body := make([]byte, 3<<20)
	rand.Read(body)
	resp, err := http.Post("http://"+tg.edge+"/api/v1/users", "application/octet-stream", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !bytes.Equal(got, body) {
		t.Errorf("echo of %d bytes: status %d, %d bytes back, equal %v", len(body), resp.StatusCode, len(got), bytes.Equal(got, body))
	}
}

func TestUpstream5xxIsCountedWithItsCode(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	c := &http.Client{}
	for range 3 {
		if _, code := get(t, c, tg.edge, "/api/v1/users", http.Header{statusHeader: {"502"}}); code != 502 {
			t.Fatalf("status %d, want the upstream's 502", code)
		}
	}
	if n := count(t, tg.reg, map[string]string{"destination_workload": "user", "response_code": "502", "response_flags": "-", "request_protocol": "http"}); n != 3 {
		t.Errorf("502s counted: %v, want 3", n)
	}
}

func TestUpstreamDownIs503(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := ln.Addr().String()
	ln.Close()
	if err := tg.SetBackends("payment", Backend{HTTP: down, GRPC: down}, Backend{}); err != nil {
		t.Fatal(err)
	}
	if _, code := get(t, &http.Client{}, tg.mesh["payment"], "/", nil); code != http.StatusServiceUnavailable {
		t.Errorf("HTTP to a closed port: %d, want 503", code)
	}
	_, err = dialGRPC(t, tg.mesh["payment"]).Check(context.Background(), &healthpb.HealthCheckRequest{})
	if status.Code(err) != codes.Unavailable {
		t.Errorf("gRPC to a closed port: %v, want Unavailable", err)
	}
	want := []map[string]string{
		{"destination_workload": "payment", "response_code": "503", "response_flags": "UF", "request_protocol": "http"},
		{"destination_workload": "payment", "response_code": "503", "response_flags": "UF", "request_protocol": "grpc", "grpc_response_status": "14"},
	}
	for _, labels := range want {
		if n := count(t, tg.reg, labels); n != 1 {
			t.Errorf("%v counted %v times, want 1", labels, n)
		}
	}
	// A canary with no process is no healthy upstream, which in a cluster
	// only the caller's sidecar records, under the canary's Service.
	if err := tg.SetTraffic("payment", routes.Traffic{Weight: 100}); err != nil {
		t.Fatal(err)
	}
	if _, code := get(t, &http.Client{}, tg.mesh["payment"], "/", nil); code != http.StatusServiceUnavailable {
		t.Errorf("HTTP to a missing canary: %d, want 503", code)
	}
	if n := count(t, tg.reg, map[string]string{"reporter": "source", "destination_service_name": "payment-canary", "destination_workload": "unknown",
		"response_code": "503", "response_flags": "UH"}); n != 1 {
		t.Errorf("missing canary counted %v times, want 1", n)
	}
}

func TestRouteTimeoutIs504(t *testing.T) {
	p := loadProject(t)
	p.Service("user").Timeout = config.Duration(200 * time.Millisecond)
	tg := startGateway(t, p)
	if _, code := get(t, &http.Client{}, tg.edge, "/api/v1/users", http.Header{sleepHeader: {"2s"}}); code != http.StatusGatewayTimeout {
		t.Errorf("a request slower than the route's timeout: %d, want 504", code)
	}
	if n := count(t, tg.reg, map[string]string{"destination_workload": "user", "response_code": "504", "response_flags": "UT"}); n != 1 {
		t.Errorf("timeouts counted: %v, want 1", n)
	}
}

func TestMirrorCopiesToTheCanary(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	if err := tg.SetTraffic("user", routes.Traffic{Mirror: 50}); err != nil {
		t.Fatal(err)
	}
	// Drain what startProcess's servers have seen so far.
	for len(tg.canary.bodies) > 0 {
		<-tg.canary.bodies
	}
	post := func(value string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, "http://"+tg.edge+"/api/v1/users", strings.NewReader("order 7"))
		req.Header.Set(RouteValueHeader, value)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	if resp := post("10"); resp.Header.Get("X-Served-By") != "stable" {
		t.Errorf("a mirrored request answered by %q, want stable", resp.Header.Get("X-Served-By"))
	}
	select {
	case body := <-tg.canary.bodies:
		if string(body) != "order 7" {
			t.Errorf("the canary's copy has body %q", body)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the canary got no copy")
	}
	if host := tg.canary.last.Load().Host; !strings.Contains(host, "-shadow") {
		t.Errorf("the copy's host %q lacks -shadow", host)
	}
	eventually(t, "the copy counted", func() bool {
		return count(t, tg.reg, map[string]string{"destination_workload": "user-canary", "response_code": "200"}) == 1
	})
	// Above the mirror percentage: no copy.
	before := tg.canary.requests.Load()
	post("60")
	time.Sleep(200 * time.Millisecond)
	if n := tg.canary.requests.Load(); n != before {
		t.Errorf("value 60 at mirror 50: the canary got %d copies", n-before)
	}
}

func TestGRPCUnaryThroughEdgeAndMesh(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	edge := dialGRPC(t, tg.edge, grpc.WithAuthority("payment"))
	mesh := dialGRPC(t, tg.mesh["payment"])
	ctx := context.Background()
	for name, c := range map[string]healthpb.HealthClient{"edge": edge, "mesh": mesh} {
		resp, err := c.Check(ctx, &healthpb.HealthCheckRequest{})
		if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("%s: Check = %v, %v; want the stable's SERVING", name, resp, err)
		}
		// An error status from the upstream comes through as it is.
		_, err = c.Check(ctx, &healthpb.HealthCheckRequest{Service: "nope"})
		if status.Code(err) != codes.NotFound {
			t.Errorf("%s: Check(nope) = %v, want NotFound", name, err)
		}
	}
	if err := tg.SetTraffic("payment", routes.Traffic{Weight: 100}); err != nil {
		t.Fatal(err)
	}
	resp, err := mesh.Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil || resp.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Errorf("at weight 100: Check = %v, %v; want the canary's NOT_SERVING", resp, err)
	}
	for _, tt := range []struct {
		labels map[string]string
		want   float64
	}{
		{map[string]string{"destination_workload": "payment", "request_protocol": "grpc", "response_code": "200", "grpc_response_status": "0", "source_workload": "istio-ingressgateway"}, 1},
		{map[string]string{"destination_workload": "payment", "request_protocol": "grpc", "response_code": "200", "grpc_response_status": "0", "source_workload": "unknown"}, 1},
		{map[string]string{"destination_workload": "payment", "request_protocol": "grpc", "grpc_response_status": "5"}, 2},
		{map[string]string{"destination_workload": "payment-canary", "request_protocol": "grpc", "grpc_response_status": "0"}, 1},
	} {
		if n := count(t, tg.reg, tt.labels); n != tt.want {
			t.Errorf("%v counted %v times, want %v", tt.labels, n, tt.want)
		}
	}
}

func TestGRPCStreamThroughEdgeAndMesh(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	for name, c := range map[string]healthpb.HealthClient{
		"edge": dialGRPC(t, tg.edge, grpc.WithAuthority("payment")),
		"mesh": dialGRPC(t, tg.mesh["payment"]),
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			svc := "stream-" + name
			tg.stable.health.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
			stream, err := c.Watch(ctx, &healthpb.HealthCheckRequest{Service: svc})
			if err != nil {
				t.Fatal(err)
			}
			// Each update arrives while the stream stays open: nothing
			// waits for the end of the response.
			for _, want := range []healthpb.HealthCheckResponse_ServingStatus{
				healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING, healthpb.HealthCheckResponse_SERVING,
			} {
				resp, err := stream.Recv()
				if err != nil {
					t.Fatal(err)
				}
				if resp.GetStatus() != want {
					t.Fatalf("got %v, want %v", resp.GetStatus(), want)
				}
				next := healthpb.HealthCheckResponse_NOT_SERVING
				if want == next {
					next = healthpb.HealthCheckResponse_SERVING
				}
				tg.stable.health.SetServingStatus(svc, next)
			}
		})
	}
}

func TestBadInput(t *testing.T) {
	p := loadProject(t)
	g, err := New(p, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		err  error
		want string
	}{
		{"unknown service", g.SetTraffic("nope", routes.Traffic{}), `unknown service "nope"`},
		{"bad mirror", g.SetTraffic("user", routes.Traffic{Mirror: -1}), "mirror -1"},
		{"bad backend", g.SetBackends("user", Backend{HTTP: "localhost"}, Backend{}), `backend address "localhost"`},
		{"backends of unknown", g.SetBackends("nope", Backend{}, Backend{}), `unknown service "nope"`},
	} {
		if tt.err == nil || !strings.Contains(tt.err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, tt.err, tt.want)
		}
	}
}

// Routes and backends change under requests in flight, in the order the
// supervisor keeps (a canary's process before its traffic, its traffic
// gone before its process); every request succeeds.
func TestChangesWhileServing(t *testing.T) {
	tg := startGateway(t, loadProject(t))
	stop := make(chan struct{})
	changed := make(chan int)
	go func() {
		n := 0
		defer func() { changed <- n }()
		for ; ; n++ {
			select {
			case <-stop:
				return
			default:
			}
			var err error
			if n%2 == 0 {
				err = tg.SetBackends("user", tg.stable.backend, tg.canary.backend)
				if err == nil {
					err = tg.SetTraffic("user", routes.Traffic{Weight: n % 101, Mirror: n % 7})
				}
			} else {
				err = tg.SetTraffic("user", routes.Traffic{})
				if err == nil {
					err = tg.SetBackends("user", tg.stable.backend, Backend{})
				}
			}
			if err != nil {
				t.Error(err)
				return
			}
		}
	}()
	c := &http.Client{}
	for range 300 {
		if _, code := get(t, c, tg.edge, "/api/v1/users", nil); code != http.StatusOK {
			t.Fatalf("status %d", code)
		}
	}
	close(stop)
	if n := <-changed; n < 10 {
		t.Errorf("only %d changes during the requests", n)
	}
}
