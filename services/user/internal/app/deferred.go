package app

import (
	"context"

	"github.com/msctl/msctl/services/kit/host"
	"github.com/msctl/msctl/services/user/internal/domain"
	"github.com/msctl/msctl/services/user/internal/store"
)

// deferredStore is the Store until Run has opened the database; calls
// before that fail with storage.ErrNotStarted, which the API reports as
// Unavailable (503). Its methods forward to the real store once it is open.
type deferredStore struct {
	*host.Deferred[store.Store]
}

func (d *deferredStore) Create(ctx context.Context, u domain.User) error {
	s, err := d.Load()
	if err != nil {
		return err
	}
	return s.Create(ctx, u)
}

func (d *deferredStore) Get(ctx context.Context, id string) (domain.User, error) {
	s, err := d.Load()
	if err != nil {
		return domain.User{}, err
	}
	return s.Get(ctx, id)
}

func (d *deferredStore) Update(ctx context.Context, u domain.User, expected int64) error {
	s, err := d.Load()
	if err != nil {
		return err
	}
	return s.Update(ctx, u, expected)
}

func (d *deferredStore) Delete(ctx context.Context, id string, expected int64) (domain.User, error) {
	s, err := d.Load()
	if err != nil {
		return domain.User{}, err
	}
	return s.Delete(ctx, id, expected)
}

func (d *deferredStore) List(ctx context.Context, q store.ListQuery) ([]domain.User, error) {
	s, err := d.Load()
	if err != nil {
		return nil, err
	}
	return s.List(ctx, q)
}

func (d *deferredStore) Events(ctx context.Context, q store.EventQuery) ([]domain.Event, error) {
	s, err := d.Load()
	if err != nil {
		return nil, err
	}
	return s.Events(ctx, q)
}

func (d *deferredStore) LastEventID(ctx context.Context) (int64, error) {
	s, err := d.Load()
	if err != nil {
		return 0, err
	}
	return s.LastEventID(ctx)
}

func (d *deferredStore) Ping(ctx context.Context) error {
	s, err := d.Load()
	if err != nil {
		return err
	}
	return s.Ping(ctx)
}

// Close is a no-op: Run closes the real store after the servers stop.
func (d *deferredStore) Close() {}

var _ store.Store = (*deferredStore)(nil)
