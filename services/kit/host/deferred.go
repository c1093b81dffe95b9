package host

import (
	"context"
	"sync/atomic"

	"github.com/msctl/msctl/services/kit/storage"
)

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
// the database in the background. The API is built at start-up on its
// Store method; until the database is open, the chain answers every call
// with storage.ErrNotStarted (Unavailable), and background tasks start
// only after, so Store is never asked too early.
type Deferred[S Store] struct {
	p      atomic.Pointer[S]
	opener func(ctx context.Context) (S, error)
}

// NewDeferred returns an empty Deferred that Run fills by calling open
// (connect and migrate) until it succeeds.
func NewDeferred[S Store](open func(ctx context.Context) (S, error)) *Deferred[S] {
	return &Deferred[S]{opener: open}
}

// Load returns the open store, or storage.ErrNotStarted. It is not called Get
// because the services' stores have a Get of their own.
func (d *Deferred[S]) Load() (S, error) {
	if p := d.p.Load(); p != nil {
		return *p, nil
	}
	var zero S
	return zero, storage.ErrNotStarted
}

// Store returns the open store. Called before Run opened the database,
// which the chain and Run's order rule out, it panics.
func (d *Deferred[S]) Store() S {
	s, err := d.Load()
	if err != nil {
		panic(err)
	}
	return s
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
