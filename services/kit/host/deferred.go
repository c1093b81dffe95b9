package host

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// ErrNotStarted is what a Deferred store answers until its database is
// open; the services' APIs report it, like any storage failure, as
// Unavailable (503), so clients retry instead of seeing a crash loop.
var ErrNotStarted = errors.New("database not ready yet (starting)")

// Store is what Run needs of a service's store: a ping for the readiness
// check and a close once the servers have stopped.
type Store interface {
	Ping(ctx context.Context) error
	Close()
}

// Database is a store Run opens in the background, checks for readiness
// and closes last. *Deferred is its only implementation.
type Database interface {
	open(ctx context.Context) error
	ping(ctx context.Context) error
	close()
}

// Deferred holds a service's store, which exists only once Run has opened
// the database: the API is built on it at start-up, and every call before
// the database is open gets ErrNotStarted. A service wraps it in a type
// that forwards its Store interface through Load.
type Deferred[S Store] struct {
	p      atomic.Pointer[S]
	opener func(ctx context.Context) (S, error)
}

// NewDeferred returns an empty Deferred that Run fills by calling open
// (connect and migrate) until it succeeds.
func NewDeferred[S Store](open func(ctx context.Context) (S, error)) *Deferred[S] {
	return &Deferred[S]{opener: open}
}

// Load returns the open store, or ErrNotStarted. It is not called Get
// because the services' stores have a Get of their own.
func (d *Deferred[S]) Load() (S, error) {
	if p := d.p.Load(); p != nil {
		return *p, nil
	}
	var zero S
	return zero, ErrNotStarted
}

func (d *Deferred[S]) open(ctx context.Context) error {
	s, err := d.opener(ctx)
	if err != nil {
		return err
	}
	d.p.Store(&s)
	return nil
}

func (d *Deferred[S]) ping(ctx context.Context) error {
	s, err := d.Load()
	if err != nil {
		return err
	}
	return s.Ping(ctx)
}

func (d *Deferred[S]) close() {
	if s, err := d.Load(); err == nil {
		s.Close()
	}
}

// StorageError answers an error a service's error mapping did not
// recognise: a call whose own context ended gets that status; a call made
// before the database opened gets UNAVAILABLE with ErrNotStarted's text
// (brief, readiness is still off, nothing to log); anything else is
// logged under what and answered UNAVAILABLE with answer, never with its
// internals.
func StorageError(ctx context.Context, logger *slog.Logger, what string, err error, answer string) error {
	switch {
	case (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) && ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, ErrNotStarted):
		return status.Error(codes.Unavailable, err.Error())
	}
	logger.ErrorContext(ctx, what, "error", err)
	return status.Error(codes.Unavailable, answer)
}
