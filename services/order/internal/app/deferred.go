package app

import (
	"context"
	"time"

	"github.com/msctl/msctl/services/kit/host"
	"github.com/msctl/msctl/services/order/internal/domain"
	"github.com/msctl/msctl/services/order/internal/store"
)

// deferredStore is the Store until Run has opened the database; calls
// before that fail with storage.ErrNotStarted, which the API reports as
// Unavailable (503). Its methods forward to the real store once it is open.
type deferredStore struct {
	*host.Deferred[store.Store]
}

func (d *deferredStore) Create(ctx context.Context, o domain.Order) error {
	s, err := d.Load()
	if err != nil {
		return err
	}
	return s.Create(ctx, o)
}

func (d *deferredStore) Update(ctx context.Context, o domain.Order, now time.Time) (domain.Order, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Order{}, err
	}
	return s.Update(ctx, o, now)
}

func (d *deferredStore) Get(ctx context.Context, id string) (domain.Order, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Order{}, err
	}
	return s.Get(ctx, id)
}

func (d *deferredStore) ByIdempotencyKey(ctx context.Context, userID, key string) (domain.Order, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Order{}, err
	}
	return s.ByIdempotencyKey(ctx, userID, key)
}

func (d *deferredStore) List(ctx context.Context, after string, limit int) ([]domain.Order, error) {
	s, err := d.Load()
	if err != nil {
		return nil, err
	}
	return s.List(ctx, after, limit)
}

func (d *deferredStore) Unfinished(ctx context.Context, after string, limit int) ([]domain.Order, error) {
	s, err := d.Load()
	if err != nil {
		return nil, err
	}
	return s.Unfinished(ctx, after, limit)
}

func (d *deferredStore) Resumable(ctx context.Context, after string, limit int, idleSince, now time.Time) ([]domain.Order, error) {
	s, err := d.Load()
	if err != nil {
		return nil, err
	}
	return s.Resumable(ctx, after, limit, idleSince, now)
}

func (d *deferredStore) Claim(ctx context.Context, o domain.Order, next time.Time) (bool, error) {
	s, err := d.Load()
	if err != nil {
		return false, err
	}
	return s.Claim(ctx, o, next)
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
