package app

import (
	"context"
	"time"

	"github.com/msctl/msctl/services/kit/host"
	"github.com/msctl/msctl/services/payment/internal/domain"
	"github.com/msctl/msctl/services/payment/internal/store"
)

// deferredStore is the Store until Run has opened the database; calls
// before that fail with storage.ErrNotStarted, which the API reports as
// Unavailable (503). Its methods forward to the real store once it is open.
type deferredStore struct {
	*host.Deferred[store.Store]
}

func (d *deferredStore) Charge(ctx context.Context, p domain.Payment) (domain.Payment, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Payment{}, err
	}
	return s.Charge(ctx, p)
}

func (d *deferredStore) Refund(ctx context.Context, orderID string, now time.Time) (domain.Payment, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Payment{}, err
	}
	return s.Refund(ctx, orderID, now)
}

func (d *deferredStore) Payment(ctx context.Context, orderID string) (domain.Payment, error) {
	s, err := d.Load()
	if err != nil {
		return domain.Payment{}, err
	}
	return s.Payment(ctx, orderID)
}

func (d *deferredStore) ListPayments(ctx context.Context, after string, limit int) ([]domain.Payment, error) {
	s, err := d.Load()
	if err != nil {
		return nil, err
	}
	return s.ListPayments(ctx, after, limit)
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
