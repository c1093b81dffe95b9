package gateway

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// The gateway's cost against calling the upstream directly, on loopback:
// the Latency benchmarks alternate a direct and a gateway request and
// report the median of each and the difference; the Throughput ones keep
// 32 requests in flight and report requests per second.
//
//	go test -run '^$' -bench . -benchtime 5000x ./internal/local/gateway

// benchTargets are a bare upstream and the gateway in front of it: HTTP on
// user's edge route, gRPC on payment's mesh listener.
type benchTargets struct {
	directHTTP, gatewayHTTP string // URLs
	directGRPC, gatewayGRPC string // host:port
}

func startBench(b *testing.B) benchTargets {
	b.Helper()
	tg := startGateway(b, loadProject(b))
	upstream := listen(b)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, `{"id":"42","name":"ada"}`)
	})}
	go srv.Serve(upstream)
	b.Cleanup(func() { srv.Close() })
	backend := Backend{HTTP: upstream.Addr().String(), GRPC: tg.stable.backend.GRPC}
	if err := tg.SetBackends("user", backend, Backend{}); err != nil {
		b.Fatal(err)
	}
	if err := tg.SetBackends("payment", backend, Backend{}); err != nil {
		b.Fatal(err)
	}
	return benchTargets{
		directHTTP:  "http://" + backend.HTTP + "/api/v1/users/42",
		gatewayHTTP: "http://" + tg.edge + "/api/v1/users/42",
		directGRPC:  backend.GRPC,
		gatewayGRPC: tg.mesh["payment"],
	}
}

func listen(b *testing.B) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	return ln
}

func httpCall(c *http.Client, url string) error {
	resp, err := c.Get(url)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, resp.Status)
	}
	return nil
}

func grpcCall(c healthpb.HealthClient) error {
	_, err := c.Check(context.Background(), &healthpb.HealthCheckRequest{})
	return err
}

func benchClient() *http.Client {
	return &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
}

// latency alternates direct and gateway calls and reports their medians.
func latency(b *testing.B, direct, gateway func() error) {
	var d, g []time.Duration
	for b.Loop() {
		start := time.Now()
		if err := direct(); err != nil {
			b.Fatal(err)
		}
		mid := time.Now()
		if err := gateway(); err != nil {
			b.Fatal(err)
		}
		d, g = append(d, mid.Sub(start)), append(g, time.Since(mid))
	}
	p50 := func(s []time.Duration) float64 {
		slices.Sort(s)
		return float64(s[len(s)/2].Microseconds())
	}
	pd, pg := p50(d), p50(g)
	b.ReportMetric(pd, "direct-p50-µs")
	b.ReportMetric(pg, "gateway-p50-µs")
	b.ReportMetric(pg-pd, "added-p50-µs")
}

// throughput keeps 32 calls in flight and reports calls per second, and
// the CPU time of the whole process (client, gateway and upstream) per
// call: on a busy machine the first says more about the neighbours, the
// second bounds what an idle one would do.
func throughput(b *testing.B, call func() error) {
	b.SetParallelism(16)
	cpu0 := cpuTime(b)
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	b.ReportMetric(float64((cpuTime(b)-cpu0).Microseconds())/float64(b.N), "cpu-µs/req")
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkHTTPLatency(b *testing.B) {
	t := startBench(b)
	c := benchClient()
	latency(b, func() error { return httpCall(c, t.directHTTP) }, func() error { return httpCall(c, t.gatewayHTTP) })
}

func BenchmarkHTTPThroughput(b *testing.B) {
	t := startBench(b)
	for _, target := range []struct{ name, url string }{{"direct", t.directHTTP}, {"gateway", t.gatewayHTTP}} {
		b.Run(target.name, func(b *testing.B) {
			c := benchClient()
			throughput(b, func() error { return httpCall(c, target.url) })
		})
	}
}

func BenchmarkGRPCLatency(b *testing.B) {
	t := startBench(b)
	direct, gateway := dialGRPC(b, t.directGRPC), dialGRPC(b, t.gatewayGRPC)
	latency(b, func() error { return grpcCall(direct) }, func() error { return grpcCall(gateway) })
}

func BenchmarkGRPCThroughput(b *testing.B) {
	t := startBench(b)
	for _, target := range []struct{ name, addr string }{{"direct", t.directGRPC}, {"gateway", t.gatewayGRPC}} {
		b.Run(target.name, func(b *testing.B) {
			c := dialGRPC(b, target.addr)
			throughput(b, func() error { return grpcCall(c) })
		})
	}
}
