package servicetest

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
)

// StallingPayment sits on loopback in front of a real payment service and
// passes every call through. While Stall is set, a Charge reaches payment
// (and captures) but its answer is held until the caller gives up, or for
// at most StallFor: a payment that takes the money and then goes quiet.
type StallingPayment struct {
	paymentv1.UnimplementedPaymentServiceServer
	// Addr is where the order service should dial payment.
	Addr string
	// Stall holds Charge answers; StallFor bounds the hold (default 5 s).
	Stall    atomic.Bool
	StallFor time.Duration
	// Stalled counts the charges whose answer was held.
	Stalled atomic.Int64
	next    paymentv1.PaymentServiceClient
}

// StartStallingPayment fronts the payment service at target; it stops
// when the test ends.
func StartStallingPayment(t testing.TB, target string) *StallingPayment {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	lis, err := net.Listen("tcp", FreeAddr(t))
	if err != nil {
		t.Fatal(err)
	}
	p := &StallingPayment{Addr: lis.Addr().String(), StallFor: 5 * time.Second, next: paymentv1.NewPaymentServiceClient(conn)}
	srv := grpc.NewServer()
	paymentv1.RegisterPaymentServiceServer(srv, p)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return p
}

// forward carries the caller's credentials on to payment.
func forward(ctx context.Context) context.Context {
	md, _ := metadata.FromIncomingContext(ctx)
	return metadata.NewOutgoingContext(ctx, md)
}

// Charge implements PaymentServiceServer.
func (p *StallingPayment) Charge(ctx context.Context, req *paymentv1.ChargeRequest) (*paymentv1.Payment, error) {
	// The charge is sent whatever the caller's deadline: it lands.
	resp, err := p.next.Charge(forward(context.WithoutCancel(ctx)), req)
	if err == nil && p.Stall.Load() {
		p.Stalled.Add(1)
		select {
		case <-ctx.Done():
			return nil, status.FromContextError(ctx.Err()).Err()
		case <-time.After(p.StallFor):
		}
	}
	return resp, err
}

// Refund implements PaymentServiceServer.
func (p *StallingPayment) Refund(ctx context.Context, req *paymentv1.RefundRequest) (*paymentv1.Payment, error) {
	return p.next.Refund(forward(ctx), req)
}

// GetPayment implements PaymentServiceServer.
func (p *StallingPayment) GetPayment(ctx context.Context, req *paymentv1.GetPaymentRequest) (*paymentv1.Payment, error) {
	return p.next.GetPayment(forward(ctx), req)
}
