// Package fault makes a build visibly bad on purpose, for canary demos:
// FAULT_ERROR_RATE fails that fraction of calls and FAULT_DELAY slows every
// call, without a code change (and FAULT_EXIT_AFTER, which kit/host
// carries out, ends the process, a build that crash-loops). All are off
// unless set; probes, metrics and health are never faulted, so a bad
// canary stays observable.
package fault

import (
	"context"
	"math/rand/v2"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Injector fails or delays calls.
type Injector struct {
	ErrorRate float64       // 0 to 1
	Delay     time.Duration // added to every call
}

// Enabled reports whether the injector does anything.
func (f Injector) Enabled() bool { return f.ErrorRate > 0 || f.Delay > 0 }

// apply waits the delay (or until ctx ends) and decides whether to fail.
func (f Injector) apply(ctx context.Context) error {
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return status.FromContextError(ctx.Err()).Err()
		case <-t.C:
		}
	}
	if f.ErrorRate > 0 && rand.Float64() < f.ErrorRate {
		return status.Error(codes.Internal, "fault injected (FAULT_ERROR_RATE)")
	}
	return nil
}

func skip(method string) bool {
	return len(method) > 17 && method[:17] == "/grpc.health.v1.H"
}

// Unary faults unary calls.
func (f Injector) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if f.Enabled() && !skip(info.FullMethod) {
			if err := f.apply(ctx); err != nil {
				return nil, err
			}
		}
		return handler(ctx, req)
	}
}

// Stream faults the start of streaming calls.
func (f Injector) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if f.Enabled() && !skip(info.FullMethod) {
			if err := f.apply(ss.Context()); err != nil {
				return err
			}
		}
		return handler(srv, ss)
	}
}

// Middleware faults HTTP requests that do not reach a gRPC server (the
// gateway's calls are faulted once, by the gRPC interceptors).
func (f Injector) Middleware(next http.Handler) http.Handler {
	if !f.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := f.apply(r.Context()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		next.ServeHTTP(w, r)
	})
}
