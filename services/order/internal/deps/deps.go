// Package deps dials the order service's dependencies (user, inventory,
// payment) through the kit's downstream clients: one connection each, a
// per-call deadline, retries only for methods that are idempotent, a
// breaker per dependency, and the order service's own API key (from
// DOWNSTREAM_API_KEY_FILE) on every call. It owns which methods are safe
// to repeat; it never decides what a failed call means for an order (that
// is the saga's).
package deps

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/kit/downstream"
	"github.com/msctl/msctl/services/order/internal/saga"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
	"github.com/msctl/msctl/services/user/userclient"
)

// Config says where the dependencies are and how patient to be with them.
type Config struct {
	UserAddr, InventoryAddr, PaymentAddr string
	// Key is sent on every call (x-api-key); the services give the
	// "service" role only what the saga needs. nil sends no credentials.
	Key credentials.PerRPCCredentials
	// Timeout bounds one attempt; FailureThreshold consecutive failures
	// open a breaker for OpenFor. Zero values take the kit's defaults.
	Timeout          time.Duration
	FailureThreshold uint32
	OpenFor          time.Duration
}

// Inventory's reservation calls are keyed by order id and payment's by
// idempotency key (the order id), so every call the saga makes may be
// repeated after a lost answer.
var (
	inventoryIdempotent = map[string]bool{
		inventoryv1.InventoryService_GetProduct_FullMethodName:        true,
		inventoryv1.InventoryService_BatchGetProducts_FullMethodName:  true,
		inventoryv1.InventoryService_ReserveStock_FullMethodName:      true,
		inventoryv1.InventoryService_ReleaseStock_FullMethodName:      true,
		inventoryv1.InventoryService_CommitReservation_FullMethodName: true,
	}
	paymentIdempotent = map[string]bool{
		paymentv1.PaymentService_Charge_FullMethodName:     true,
		paymentv1.PaymentService_Refund_FullMethodName:     true,
		paymentv1.PaymentService_GetPayment_FullMethodName: true,
	}
)

// Dial opens one connection per dependency on clients (which registers
// and serves the breakers) and returns the saga's clients.
func Dial(clients *downstream.Clients, cfg Config) (saga.Deps, error) {
	var opts []grpc.DialOption
	if cfg.Key != nil {
		opts = append(opts, grpc.WithPerRPCCredentials(cfg.Key))
	}
	dial := func(name, addr string, idempotent map[string]bool) (*grpc.ClientConn, error) {
		return clients.Dial(downstream.Target{
			Name: name, Addr: addr, Timeout: cfg.Timeout, Idempotent: idempotent,
			FailureThreshold: cfg.FailureThreshold, OpenFor: cfg.OpenFor, DialOptions: opts,
		})
	}
	u, err := dial("user", cfg.UserAddr, userclient.Idempotent)
	if err != nil {
		return saga.Deps{}, err
	}
	inv, err := dial("inventory", cfg.InventoryAddr, inventoryIdempotent)
	if err != nil {
		return saga.Deps{}, err
	}
	pay, err := dial("payment", cfg.PaymentAddr, paymentIdempotent)
	if err != nil {
		return saga.Deps{}, err
	}
	return saga.Deps{
		Users:     userv1.NewUserServiceClient(u),
		Inventory: inventoryv1.NewInventoryServiceClient(inv),
		Payments:  paymentv1.NewPaymentServiceClient(pay),
	}, nil
}
