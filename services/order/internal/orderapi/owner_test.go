package orderapi

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/msctl/msctl/services/kit/auth"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/domain"
)

// TestCustomersActOnlyForThemselves: a customer's credentials name its
// user; it may not place orders for another user, and another user's
// orders are not found to it (read or cancel), while roles that reach
// every user are not limited.
func TestCustomersActOnlyForThemselves(t *testing.T) {
	srv, s := newServer(t, &compensations{})
	o := stored(t, s, domain.StepReserve) // belongs to user "u"
	as := func(subject string, roles ...string) context.Context {
		return auth.WithPrincipal(context.Background(), auth.Principal{Subject: subject, Roles: roles, Via: "jwt"})
	}
	for _, tc := range []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"owner", as("u", "customer"), codes.OK},
		{"another customer", as("mallory", "customer"), codes.NotFound},
		{"support", as("sam", "support"), codes.OK},
		{"customer who is also a reader", as("rita", "customer", "reader"), codes.OK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := srv.GetOrder(tc.ctx, &orderv1.GetOrderRequest{Id: o.ID}); status.Code(err) != tc.want {
				t.Fatalf("GetOrder: %v, want %v", err, tc.want)
			}
		})
	}
	if _, err := srv.CancelOrder(as("mallory", "customer"), &orderv1.CancelOrderRequest{Id: o.ID}); status.Code(err) != codes.NotFound {
		t.Fatalf("another customer's cancel: %v", err)
	}
	if after, _ := s.Get(context.Background(), o.ID); after.Status != domain.Pending {
		t.Fatalf("another customer's cancel changed the order: %s", after.Status)
	}
	_, err := srv.CreateOrder(as("mallory", "customer"), &orderv1.CreateOrderRequest{UserId: "u", PaymentMethodToken: "tok",
		Items: []*orderv1.Item{{ProductId: "p", Quantity: 1}}})
	if status.Code(err) != codes.PermissionDenied {
		t.Fatalf("an order for another user: %v", err)
	}
}
