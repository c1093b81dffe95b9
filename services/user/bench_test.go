package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/msctl/msctl/services/kit/loadgen"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

// Benchmarks of GetUser; hack/bench/user.sh runs them and the figures are
// recorded in docs/benchmarks.md. Client and server share the machine, as
// they do for every variant, so the ratios compare like with like.

// bare is a plain grpc-go server answering GetUser with a fixed message:
// no interceptors, no stats handler, no database.
type bare struct {
	userv1.UnimplementedUserServiceServer
	user *userv1.User
}

func (b *bare) GetUser(context.Context, *userv1.GetUserRequest) (*userv1.User, error) {
	return b.user, nil
}

// target is one way to call GetUser.
type target struct {
	name string
	call loadgen.Call
}

// targets starts the full service (production log level, logs encoded and
// discarded) holding one user, and a bare server answering that user.
func targets(b *testing.B) []target {
	in := startWith(b, map[string]string{"LOG_LEVEL": "info"}, nil)
	u, err := in.client.CreateUser(asAdmin(), &userv1.CreateUserRequest{Email: "bench@example.com", FullName: "Bench"})
	if err != nil {
		b.Fatal(err)
	}
	req := &userv1.GetUserRequest{Id: u.GetId()}

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := grpc.NewServer()
	userv1.RegisterUserServiceServer(srv, &bare{user: u})
	go func() { _ = srv.Serve(lis) }()
	b.Cleanup(srv.Stop)
	bareConn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = bareConn.Close() })
	bareClient := userv1.NewUserServiceClient(bareConn)

	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	url := "http://" + in.addrs.HTTP.String() + "/api/v1/users/" + u.GetId()
	return []target{
		{"grpc-bare", func(ctx context.Context) error {
			_, err := bareClient.GetUser(metadata.AppendToOutgoingContext(ctx, "x-api-key", benchKey), req)
			return err
		}},
		{"grpc-full", func(ctx context.Context) error {
			_, err := in.client.GetUser(metadata.AppendToOutgoingContext(ctx, "x-api-key", benchKey), req)
			return err
		}},
		{"http-full", func(ctx context.Context) error {
			r, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			r.Header.Set("X-API-Key", benchKey)
			resp, err := httpClient.Do(r)
			if err != nil {
				return err
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("status %d", resp.StatusCode)
			}
			return nil
		}},
	}
}

// BenchmarkGetUser measures closed-loop throughput with 8 callers per CPU.
func BenchmarkGetUser(b *testing.B) {
	for _, tg := range targets(b) {
		b.Run(tg.name, func(b *testing.B) {
			b.SetParallelism(8)
			b.ResetTimer()
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := tg.call(context.Background()); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "calls/s")
		})
	}
}

// BenchmarkGetUserLatency finds each target's peak (closed loop, 16
// callers, 3s), then offers half of it open loop for 5s and reports the
// latency percentiles at that load. Run it with -benchtime=1x.
func BenchmarkGetUserLatency(b *testing.B) {
	for _, tg := range targets(b) {
		if tg.name == "grpc-bare" {
			continue
		}
		b.Run(tg.name, func(b *testing.B) {
			closed, open := 3*time.Second, 5*time.Second
			if testing.Short() { // make test's smoke run: does it still work?
				closed, open = 500*time.Millisecond, 500*time.Millisecond
			}
			for range b.N {
				peak, err := loadgen.ClosedLoop(context.Background(), 16, closed, tg.call)
				if err != nil {
					b.Fatal(err)
				}
				lat, err := loadgen.OpenLoop(context.Background(), peak/2, open, tg.call)
				if err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(peak, "peak-calls/s")
				b.ReportMetric(peak/2, "offered-calls/s")
				b.ReportMetric(float64(loadgen.Percentile(lat, 0.50).Microseconds()), "p50-µs")
				b.ReportMetric(float64(loadgen.Percentile(lat, 0.99).Microseconds()), "p99-µs")
			}
		})
	}
}
