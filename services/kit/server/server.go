// Package server runs a service's listeners: each is opened when added (so
// port 0 works in tests and Addr is known before serving), all serve until
// the context ends, then they stop gracefully within a deadline.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc"
)

type entry struct {
	name  string
	lis   net.Listener
	serve func(net.Listener) error
	// stop stops gracefully; cancel-on-deadline is stop's own business.
	stop func(ctx context.Context)
	last bool
}

// Group is a set of servers started and stopped together.
type Group struct {
	logger  *slog.Logger
	entries []*entry
}

// New returns an empty Group.
func New(logger *slog.Logger) *Group { return &Group{logger: logger} }

// Option changes how one server is run.
type Option func(*entry)

// StopLast keeps a server (the admin port, so probes and scrapes still get
// answers while traffic drains) until every other server has stopped.
func StopLast() Option { return func(e *entry) { e.last = true } }

func (g *Group) listen(name, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("server: %s listener on %s: %w", name, addr, err)
	}
	return lis, nil
}

// AddGRPC opens addr for srv and returns the bound address.
func (g *Group) AddGRPC(name, addr string, srv *grpc.Server, opts ...Option) (net.Addr, error) {
	lis, err := g.listen(name, addr)
	if err != nil {
		return nil, err
	}
	e := &entry{name: name, lis: lis, serve: srv.Serve, stop: func(ctx context.Context) {
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			srv.Stop() // the deadline passed: cut the remaining calls off
			<-done
		}
	}}
	for _, o := range opts {
		o(e)
	}
	g.entries = append(g.entries, e)
	return lis.Addr(), nil
}

// AddHTTP opens addr for srv and returns the bound address.
func (g *Group) AddHTTP(name, addr string, srv *http.Server, opts ...Option) (net.Addr, error) {
	lis, err := g.listen(name, addr)
	if err != nil {
		return nil, err
	}
	e := &entry{name: name, lis: lis,
		serve: func(l net.Listener) error {
			if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
		stop: func(ctx context.Context) {
			if err := srv.Shutdown(ctx); err != nil {
				_ = srv.Close()
			}
		}}
	for _, o := range opts {
		o(e)
	}
	g.entries = append(g.entries, e)
	return lis.Addr(), nil
}

// Close releases the listeners of a Group that will not Serve (start-up
// failed after they were opened).
func (g *Group) Close() {
	for _, e := range g.entries {
		_ = e.lis.Close()
	}
}

// Serve serves every server until ctx ends or one fails, then stops them
// all: first the ordinary ones in parallel, then the StopLast ones, all
// within grace. It returns the first serving error, if any.
func (g *Group) Serve(ctx context.Context, grace time.Duration, beforeStop func()) error {
	errc := make(chan error, len(g.entries))
	var wg sync.WaitGroup
	for _, e := range g.entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.logger.Info("serving", "server", e.name, "addr", e.lis.Addr().String())
			if err := e.serve(e.lis); err != nil {
				errc <- fmt.Errorf("server: %s: %w", e.name, err)
			}
		}()
	}
	var first error
	select {
	case <-ctx.Done():
	case first = <-errc:
	}
	if beforeStop != nil {
		beforeStop()
	}
	deadline, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	for _, last := range []bool{false, true} {
		var sw sync.WaitGroup
		for _, e := range g.entries {
			if e.last != last {
				continue
			}
			sw.Add(1)
			go func() {
				defer sw.Done()
				start := time.Now()
				e.stop(deadline)
				g.logger.Info("stopped", "server", e.name, "took", time.Since(start).Round(time.Millisecond).String())
			}()
		}
		sw.Wait()
	}
	wg.Wait()
	if first == nil {
		select {
		case first = <-errc:
		default:
		}
	}
	return first
}
