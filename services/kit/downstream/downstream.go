// Package downstream is how a service calls the services it depends on:
// one gRPC connection per dependency (never one per call), a deadline per
// call, retries with backoff for idempotent methods only, and a circuit
// breaker per dependency whose state is exported as
// circuit_breaker_state{service,target} (0 closed, 1 half-open, 2 open),
// counted per transition, and served as JSON at /debug/breakers.
package downstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/sony/gobreaker/v2"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

// Target describes one dependency.
type Target struct {
	// Name is the dependency's label in metrics, e.g. "user".
	Name string
	// Addr is a gRPC target, e.g. "dns:///user:9090".
	Addr string
	// Timeout bounds each attempt; the caller's own deadline still applies.
	Timeout time.Duration
	// Attempts is the most tries an idempotent call gets (1 = no retry).
	Attempts int
	// Backoff is the first retry delay; it doubles, with jitter.
	Backoff time.Duration
	// Idempotent lists full method names that are safe to retry.
	Idempotent map[string]bool
	// FailureThreshold consecutive failures open the breaker, which tries
	// again after OpenFor.
	FailureThreshold uint32
	OpenFor          time.Duration
	// DialOptions are added to the defaults (insecure transport inside the
	// mesh, where Istio provides mTLS; OpenTelemetry stats handler).
	DialOptions []grpc.DialOption
}

func (t *Target) defaults() {
	if t.Timeout <= 0 {
		t.Timeout = 2 * time.Second
	}
	if t.Attempts < 1 {
		t.Attempts = 3
	}
	if t.Backoff <= 0 {
		t.Backoff = 50 * time.Millisecond
	}
	if t.FailureThreshold == 0 {
		t.FailureThreshold = 5
	}
	if t.OpenFor <= 0 {
		t.OpenFor = 10 * time.Second
	}
}

// Clients owns the connections and breakers of one service's dependencies.
type Clients struct {
	service     string
	state       *prometheus.GaugeVec
	transitions *prometheus.CounterVec

	mu       sync.Mutex
	breakers map[string]*gobreaker.CircuitBreaker[any]
	conns    []*grpc.ClientConn
}

// New registers the breaker metrics on reg for the calling service.
func New(reg prometheus.Registerer, service string) *Clients {
	c := &Clients{
		service: service,
		state: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "circuit_breaker_state",
			Help: "Breaker state per dependency: 0 closed, 1 half-open, 2 open.",
		}, []string{"service", "target"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "circuit_breaker_transitions_total",
			Help: "Breaker state changes per dependency.",
		}, []string{"service", "target", "from", "to"}),
		breakers: map[string]*gobreaker.CircuitBreaker[any]{},
	}
	reg.MustRegister(c.state, c.transitions)
	return c
}

// Dial returns the one connection for t; grpc.NewClient connects lazily,
// so a dependency that is down does not stop start-up.
func (c *Clients) Dial(t Target) (*grpc.ClientConn, error) {
	t.defaults()
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.breakers[t.Name]; dup {
		return nil, fmt.Errorf("downstream: %q dialled twice; share the connection", t.Name)
	}
	cb := gobreaker.NewCircuitBreaker[any](gobreaker.Settings{
		Name:        t.Name,
		MaxRequests: 1,
		Timeout:     t.OpenFor,
		ReadyToTrip: func(n gobreaker.Counts) bool { return n.ConsecutiveFailures >= t.FailureThreshold },
		OnStateChange: func(name string, from, to gobreaker.State) {
			c.state.WithLabelValues(c.service, name).Set(float64(to))
			c.transitions.WithLabelValues(c.service, name, from.String(), to.String()).Inc()
		},
		IsSuccessful: func(err error) bool { return !breaks(err) },
		// The caller giving up says nothing about the dependency's health.
		IsExcluded: func(err error) bool { return status.Code(err) == codes.Canceled },
	})
	c.state.WithLabelValues(c.service, t.Name).Set(0)
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithStatsHandler(otelgrpc.NewClientHandler()),
		grpc.WithChainUnaryInterceptor(unary(t, cb)),
		grpc.WithChainStreamInterceptor(stream(t, cb)),
	}, t.DialOptions...)
	conn, err := grpc.NewClient(t.Addr, opts...)
	if err != nil {
		return nil, fmt.Errorf("downstream: %s: %w", t.Name, err)
	}
	c.breakers[t.Name] = cb
	c.conns = append(c.conns, conn)
	return conn, nil
}

// breaks reports whether err says the dependency is unwell (as opposed to
// the request being wrong), which is what opens a breaker.
func breaks(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.Unknown, codes.ResourceExhausted, codes.DataLoss:
		return true
	}
	return false
}

// retryable reports whether another attempt may succeed.
func retryable(err error) bool {
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted:
		return true
	}
	return false
}

// BreakerOpenError is a call the breaker refused before any attempt was
// sent: this process sent nothing, though another process (or an earlier
// run of the same saga step) may have, so it never proves the call did not
// land. A refusal after a sent attempt returns that attempt's error
// instead. gRPC sees it as UNAVAILABLE.
type BreakerOpenError struct {
	// Target is the dependency's name.
	Target string
}

func (e *BreakerOpenError) Error() string { return e.Target + ": circuit breaker open" }

// GRPCStatus makes the refusal UNAVAILABLE to grpc's status package and,
// returned from a handler, to the caller.
func (e *BreakerOpenError) GRPCStatus() *status.Status {
	return status.New(codes.Unavailable, e.Error())
}

// IsBreakerOpen reports whether err is, or wraps, this process's breaker
// refusing a call. An UNAVAILABLE with the same text from a remote server
// is not: that call was sent.
func IsBreakerOpen(err error) bool {
	var e *BreakerOpenError
	return errors.As(err, &e)
}

// refused reports whether gobreaker turned the call away.
func refused(err error) bool {
	return errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests)
}

func unary(t Target, cb *gobreaker.CircuitBreaker[any]) grpc.UnaryClientInterceptor {
	return func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		attempts := 1
		if t.Idempotent[method] {
			attempts = t.Attempts
		}
		delay := t.Backoff
		var err error
		for i := 0; i < attempts; i++ {
			if i > 0 {
				// Full jitter keeps retrying replicas from moving in step.
				wait := time.Duration(rand.Int64N(int64(delay) + 1))
				select {
				case <-ctx.Done():
					return status.FromContextError(ctx.Err()).Err()
				case <-time.After(wait):
				}
				delay *= 2
			}
			sentErr := err // every earlier attempt was sent
			_, err = cb.Execute(func() (any, error) {
				actx, cancel := context.WithTimeout(ctx, t.Timeout)
				defer cancel()
				return nil, invoker(actx, method, req, reply, cc, opts...)
			})
			if refused(err) {
				if i > 0 {
					// The call may have landed: a refusal must not hide that.
					return sentErr
				}
				return &BreakerOpenError{Target: t.Name}
			}
			if err == nil || !retryable(err) || ctx.Err() != nil {
				return err
			}
		}
		return err
	}
}

// stream guards the opening of streams with the breaker; a stream's own
// lifetime is the caller's (no per-call timeout, no retry).
func stream(t Target, cb *gobreaker.CircuitBreaker[any]) grpc.StreamClientInterceptor {
	return func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
		s, err := cb.Execute(func() (any, error) { return streamer(ctx, desc, cc, method, opts...) })
		if refused(err) {
			return nil, &BreakerOpenError{Target: t.Name}
		}
		if err != nil {
			return nil, err
		}
		return s.(grpc.ClientStream), nil
	}
}

// BreakerState is one breaker as /debug/breakers shows it.
type BreakerState struct {
	Target              string `json:"target"`
	State               string `json:"state"`
	Requests            uint32 `json:"requests"`
	ConsecutiveFailures uint32 `json:"consecutive_failures"`
}

// Breakers returns every breaker's state, sorted by target.
func (c *Clients) Breakers() []BreakerState {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]BreakerState, 0, len(c.breakers))
	for name, cb := range c.breakers {
		n := cb.Counts()
		out = append(out, BreakerState{Target: name, State: cb.State().String(), Requests: n.Requests, ConsecutiveFailures: n.ConsecutiveFailures})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Target < out[j].Target })
	return out
}

// ServeHTTP serves Breakers as JSON, for /debug/breakers.
func (c *Clients) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"service": c.service, "breakers": c.Breakers()})
}

// Close closes every connection.
func (c *Clients) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, conn := range c.conns {
		errs = append(errs, conn.Close())
	}
	return errors.Join(errs...)
}
