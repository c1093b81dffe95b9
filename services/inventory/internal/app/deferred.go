package app

import (
	"context"
	"time"

	"github.com/msctl/msctl/services/inventory/internal/domain"
	"github.com/msctl/msctl/services/inventory/internal/store"
	"github.com/msctl/msctl/services/kit/host"
)

// deferredStore is the Store until Run has opened the database; calls
// before that fail with storage.ErrNotStarted, which the API reports as
// Unavailable (503). Its methods forward to the real store once it is open.
type deferredStore struct {
	*host.Deferred[store.Store]
}

func (d *deferredStore) CreateProduct(ctx context.Context, p domain.Product) error {
	s, err := d.Load()
	if err != nil {
		return err
	}
	return s.CreateProduct(ctx, p)
}

func (d *deferredStore) GetProducts(ctx context.Context, ids []string) ([]domain.Product, error) {
	s, err := d.Load()
	if err != nil {
		return nil, err
	}
	return s.GetProducts(ctx, ids)
}

func (d *deferredStore) GetProduct(ctx context.Context, id string) (domain.Product, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Product{}, err
	}
	return s.GetProduct(ctx, id)
}

func (d *deferredStore) ListProducts(ctx context.Context, after string, limit int) ([]domain.Product, error) {
	s, err := d.Load()
	if err != nil {
		return nil, err
	}
	return s.ListProducts(ctx, after, limit)
}

func (d *deferredStore) AdjustStock(ctx context.Context, id string, delta int64, now time.Time) (domain.Product, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Product{}, err
	}
	return s.AdjustStock(ctx, id, delta, now)
}

func (d *deferredStore) Reserve(ctx context.Context, orderID string, items []domain.Item, now, expiresAt time.Time) (domain.Reservation, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Reservation{}, err
	}
	return s.Reserve(ctx, orderID, items, now, expiresAt)
}

func (d *deferredStore) Release(ctx context.Context, orderID string, now time.Time) (domain.Reservation, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Reservation{}, err
	}
	return s.Release(ctx, orderID, now)
}

func (d *deferredStore) Commit(ctx context.Context, orderID string, now time.Time) (domain.Reservation, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Reservation{}, err
	}
	return s.Commit(ctx, orderID, now)
}

func (d *deferredStore) Reservation(ctx context.Context, orderID string) (domain.Reservation, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Reservation{}, err
	}
	return s.Reservation(ctx, orderID)
}

func (d *deferredStore) ExpireDue(ctx context.Context, now time.Time, limit int) (int, error) {
	s, err := d.Load()
	if err != nil {
		return 0, err
	}
	return s.ExpireDue(ctx, now, limit)
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
