package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/host/hosttest"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
	"github.com/msctl/msctl/services/payment/internal/app"
)

const (
	adminKey   = hosttest.AdminKey
	serviceKey = hosttest.ServiceKey
)

// instance is one in-process payment service on loopback port 0.
type instance struct {
	t      *testing.T
	addrs  app.Addrs
	client paymentv1.PaymentServiceClient
}

func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	a, conn := hosttest.Start(t, hosttest.Env(t, "payment.db", env), app.LoadConfig, app.New)
	return &instance{t: t, addrs: a.Addrs(), client: paymentv1.NewPaymentServiceClient(conn)}
}

// do sends an HTTP request with the admin key and decodes the JSON answer.
func (in *instance) do(method, path, body string) (int, map[string]any) {
	in.t.Helper()
	return hosttest.Do(in.t, in.addrs, method, path, body)
}

func as(key string) context.Context { return hosttest.As(key) }

// charge is the order service's call over gRPC.
func (in *instance) charge(order, key string, amount int64, card string) (*paymentv1.Payment, error) {
	return in.client.Charge(as(serviceKey), &paymentv1.ChargeRequest{OrderId: order, IdempotencyKey: key,
		Amount: amount, Currency: "USD", PaymentMethodToken: card})
}

// total is how many payments exist, listed as an admin.
func (in *instance) total() int {
	in.t.Helper()
	resp, err := in.client.ListPayments(as(adminKey), &paymentv1.ListPaymentsRequest{PageSize: 500})
	if err != nil {
		in.t.Fatal(err)
	}
	return len(resp.GetPayments())
}

func TestPaymentsOverHTTPAndGRPC(t *testing.T) {
	in := start(t, nil)

	code, body := in.do("POST", "/api/v1/payments",
		`{"orderId":"o-1","amount":"1999","currency":"usd","idempotencyKey":"o-1","paymentMethodToken":"4242424242424242"}`)
	if code != http.StatusOK || body["status"] != "PAYMENT_STATUS_CAPTURED" || body["currency"] != "USD" ||
		body["amount"] != "1999" || body["paymentMethodLast4"] != "4242" {
		t.Fatalf("charge: %d %v", code, body)
	}
	id := body["id"]
	// The saga's retry over gRPC returns the same payment.
	p, err := in.charge("o-1", "o-1", 1999, "4242424242424242")
	if err != nil || p.GetId() != id || p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_CAPTURED {
		t.Fatalf("retried charge: %v %v", p, err)
	}
	code, body = in.do("GET", "/api/v1/payments/o-1", "")
	if code != http.StatusOK || body["id"] != id {
		t.Fatalf("get: %d %v", code, body)
	}

	// Bad input: the right status, and nothing changed.
	for _, c := range []struct {
		name, method, path, body string
		code                     int
		message                  string
	}{
		{"zero amount", "POST", "/api/v1/payments", `{"orderId":"o-2","amount":"0","currency":"USD","idempotencyKey":"k","paymentMethodToken":"t"}`,
			http.StatusBadRequest, "amount: 0 is not positive"},
		{"negative amount", "POST", "/api/v1/payments", `{"orderId":"o-2","amount":"-5","currency":"USD","idempotencyKey":"k","paymentMethodToken":"t"}`,
			http.StatusBadRequest, "amount: -5 is not positive"},
		{"huge amount", "POST", "/api/v1/payments", `{"orderId":"o-2","amount":"10000000001","currency":"USD","idempotencyKey":"k","paymentMethodToken":"t"}`,
			http.StatusBadRequest, "above the maximum"},
		{"unknown currency", "POST", "/api/v1/payments", `{"orderId":"o-2","amount":"5","currency":"XYZ","idempotencyKey":"k","paymentMethodToken":"t"}`,
			http.StatusBadRequest, `currency: "XYZ" is not one of`},
		{"no idempotency key", "POST", "/api/v1/payments", `{"orderId":"o-2","amount":"5","currency":"USD","paymentMethodToken":"t"}`,
			http.StatusBadRequest, "idempotency_key: is required"},
		{"key reused for another amount", "POST", "/api/v1/payments", `{"orderId":"o-1","amount":"2000","currency":"USD","idempotencyKey":"o-1","paymentMethodToken":"t"}`,
			http.StatusConflict, `idempotency key "o-1" was already used`},
		{"key reused with another card", "POST", "/api/v1/payments", `{"orderId":"o-1","amount":"1999","currency":"USD","idempotencyKey":"o-1","paymentMethodToken":"5555555555554444"}`,
			http.StatusConflict, `card ending 4242; use a new key`},
		{"second charge of a paid order", "POST", "/api/v1/payments", `{"orderId":"o-1","amount":"1999","currency":"USD","idempotencyKey":"other","paymentMethodToken":"t"}`,
			http.StatusConflict, `order "o-1" already has a captured payment`},
		{"unknown order", "GET", "/api/v1/payments/o-404", "", http.StatusNotFound, `order "o-404" has no payment`},
		{"refund of an unknown order", "POST", "/api/v1/payments/o-404/refund", `{}`, http.StatusNotFound, `order "o-404" has no payment`},
		{"bad page token", "GET", "/api/v1/payments?pageToken=nope", "", http.StatusBadRequest, "page_token"},
	} {
		code, body := in.do(c.method, c.path, c.body)
		if code != c.code || !strings.Contains(fmt.Sprint(body), c.message) {
			t.Errorf("%s: %d %v; want %d with %q", c.name, code, body, c.code, c.message)
		}
	}
	if n := in.total(); n != 1 {
		t.Fatalf("after bad input: %d payments, want 1", n)
	}

	// Compensation: refund twice over HTTP, the same refunded record.
	for range 2 {
		code, body = in.do("POST", "/api/v1/payments/o-1/refund", `{}`)
		if code != http.StatusOK || body["status"] != "PAYMENT_STATUS_REFUNDED" || body["id"] != id {
			t.Fatalf("refund: %d %v", code, body)
		}
	}

	// Cursor paging over HTTP: one per page, in creation order.
	if _, err := in.charge("o-2", "o-2", 50, "4242"); err != nil {
		t.Fatal(err)
	}
	code, body = in.do("GET", "/api/v1/payments?pageSize=1", "")
	tok, _ := body["nextPageToken"].(string)
	if code != http.StatusOK || len(body["payments"].([]any)) != 1 || tok == "" {
		t.Fatalf("list page 1: %d %v", code, body)
	}
	code, body = in.do("GET", "/api/v1/payments?pageSize=1&pageToken="+tok, "")
	if code != http.StatusOK || body["payments"].([]any)[0].(map[string]any)["orderId"] != "o-2" || body["nextPageToken"] != "" {
		t.Fatalf("list page 2: %d %v", code, body)
	}

	// The container health probe finds the ready admin port.
	var out, errb strings.Builder
	if code := run([]string{"--health-check"}, config.FromMap(map[string]string{"ADMIN_ADDR": in.addrs.Admin.String()}), &out, &errb); code != 0 {
		t.Errorf("--health-check: exit %d, %s", code, errb.String())
	}

	// RBAC: the order service charges and reads but cannot list; a reader
	// key does not exist here, so an unknown key is refused outright.
	if _, err := in.client.ListPayments(as(serviceKey), &paymentv1.ListPaymentsRequest{}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("list as service: %v, want PermissionDenied", err)
	}
	if _, err := in.client.Charge(as("key-unknown-0123456789"), &paymentv1.ChargeRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("charge with an unknown key: %v, want Unauthenticated", err)
	}
}

// TestDeclines checks the failure mode the saga's compensation is tested
// with: declines are OK answers with status DECLINED, repeatable, and a
// refund of a declined order is a no-op.
func TestDeclines(t *testing.T) {
	in := start(t, map[string]string{"PAYMENT_DECLINE_CARDS": "4000000000000002, 4000000000009995", "PAYMENT_DECLINE_RATE": "0.5"})
	for range 2 {
		p, err := in.charge("o-1", "o-1", 100, "4000000000000002")
		if err != nil || p.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED || !strings.Contains(p.GetDeclineReason(), "0002") {
			t.Fatalf("charge with a declining card: %v %v", p, err)
		}
	}
	r, err := in.client.Refund(as(serviceKey), &paymentv1.RefundRequest{OrderId: "o-1"})
	if err != nil || r.GetStatus() != paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED {
		t.Fatalf("refund of a declined order: %v %v", r, err)
	}
	// At rate 0.5 some orders decline and some do not, and each order's
	// answer is the same on every retry.
	declined := 0
	for i := range 40 {
		order := fmt.Sprint("rate-", i)
		first, err := in.charge(order, order, 100, "4242424242424242")
		if err != nil {
			t.Fatal(err)
		}
		again, err := in.charge(order, order, 100, "4242424242424242")
		if err != nil || again.GetId() != first.GetId() || again.GetStatus() != first.GetStatus() {
			t.Fatalf("retry of %s: %v then %v, %v", order, first, again, err)
		}
		if first.GetStatus() == paymentv1.PaymentStatus_PAYMENT_STATUS_DECLINED {
			declined++
		}
	}
	if declined < 8 || declined > 32 {
		t.Fatalf("%d of 40 orders declined at rate 0.5", declined)
	}
	if n := in.total(); n != 41 {
		t.Fatalf("%d payments stored, want 41 (one per order)", n)
	}
}

func TestVersionAndBadConfig(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"--version"}, config.FromMap(nil), &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "payment ") {
		t.Fatalf("--version: %d %q %q", code, out.String(), errb.String())
	}
	for _, bad := range []string{"1.5", "-0.1", "often"} {
		errb.Reset()
		code := run(nil, config.FromMap(map[string]string{"PAYMENT_DECLINE_RATE": bad}), &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), "PAYMENT_DECLINE_RATE") {
			t.Errorf("PAYMENT_DECLINE_RATE=%s: exit %d, stderr %q", bad, code, errb.String())
		}
	}
}
