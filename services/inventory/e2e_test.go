package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/inventory/internal/app"
	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/host/hosttest"
)

const (
	adminKey   = hosttest.AdminKey
	serviceKey = hosttest.ServiceKey
)

// instance is one in-process inventory service on loopback port 0.
type instance struct {
	t      *testing.T
	addrs  app.Addrs
	client inventoryv1.InventoryServiceClient
}

func start(t *testing.T, env map[string]string) *instance {
	t.Helper()
	a, conn := hosttest.Start(t, hosttest.Env(t, "inventory.db", env), app.LoadConfig, app.New)
	return &instance{t: t, addrs: a.Addrs(), client: inventoryv1.NewInventoryServiceClient(conn)}
}

// do sends an HTTP request with the admin key and decodes the JSON answer.
func (in *instance) do(method, path, body string) (int, map[string]any) {
	in.t.Helper()
	return hosttest.Do(in.t, in.addrs, method, path, body)
}

func as(key string) context.Context { return hosttest.As(key) }

// product reads a product over gRPC and returns available and reserved.
func (in *instance) stock(id string) (int64, int64) {
	in.t.Helper()
	p, err := in.client.GetProduct(as(serviceKey), &inventoryv1.GetProductRequest{Id: id})
	if err != nil {
		in.t.Fatal(err)
	}
	return p.GetAvailable(), p.GetReserved()
}

func TestProductsAndReservationsOverHTTPAndGRPC(t *testing.T) {
	in := start(t, nil)

	code, body := in.do("POST", "/api/v1/products", `{"sku":"W-1","name":"Widget","priceCents":"250","initialStock":"5"}`)
	if code != http.StatusCreated || body["available"] != "5" || body["sku"] != "W-1" {
		t.Fatalf("create: %d %v", code, body)
	}
	widget := body["id"].(string)
	code, body = in.do("POST", "/api/v1/products", `{"sku":"W-1","name":"Again"}`)
	if code != http.StatusConflict {
		t.Fatalf("duplicate sku: %d %v", code, body)
	}
	// A body naming another product than the path is refused, not overridden.
	if code, body := in.do("POST", "/api/v1/products/"+widget+"/stock", `{"productId":"0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d","delta":"5"}`); code != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(body), "the path says") {
		t.Fatalf("body and path disagree: %d %v", code, body)
	}
	code, body = in.do("POST", "/api/v1/products/"+widget+"/stock", `{"delta":"5"}`)
	if code != http.StatusOK || body["available"] != "10" {
		t.Fatalf("adjust: %d %v", code, body)
	}
	gadget, err := in.client.CreateProduct(as(adminKey), &inventoryv1.CreateProductRequest{Sku: "G-1", Name: "Gadget", InitialStock: 1})
	if err != nil {
		t.Fatal(err)
	}
	// Cursor paging over HTTP: one per page, in creation order.
	code, body = in.do("GET", "/api/v1/products?pageSize=1", "")
	tok, _ := body["nextPageToken"].(string)
	if code != http.StatusOK || len(body["products"].([]any)) != 1 || tok == "" {
		t.Fatalf("list page 1: %d %v", code, body)
	}
	code, body = in.do("GET", "/api/v1/products?pageSize=1&pageToken="+tok, "")
	if code != http.StatusOK || body["products"].([]any)[0].(map[string]any)["id"] != gadget.GetId() {
		t.Fatalf("list page 2: %d %v", code, body)
	}

	// Bad input: the right status, and nothing changed.
	for _, c := range []struct {
		name, method, path, body string
		code                     int
		message                  string
	}{
		{"unknown product", "PUT", "/api/v1/reservations/o-1", `{"items":[{"productId":"0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d","quantity":"1"}]}`,
			http.StatusNotFound, "product 0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d not found"},
		{"zero quantity", "PUT", "/api/v1/reservations/o-1", `{"items":[{"productId":"` + widget + `","quantity":"0"}]}`,
			http.StatusBadRequest, "items[0].quantity: 0 is not positive"},
		{"negative quantity", "PUT", "/api/v1/reservations/o-1", `{"items":[{"productId":"` + widget + `","quantity":"-3"}]}`,
			http.StatusBadRequest, "items[0].quantity: -3 is not positive"},
		{"insufficient stock", "PUT", "/api/v1/reservations/o-1",
			`{"items":[{"productId":"` + widget + `","quantity":"2"},{"productId":"` + gadget.GetId() + `","quantity":"2"}]}`,
			http.StatusBadRequest, "insufficient stock for product " + gadget.GetId() + ": requested 2, available 1"},
		{"stock below zero", "POST", "/api/v1/products/" + widget + "/stock", `{"delta":"-11"}`,
			http.StatusBadRequest, "insufficient stock"},
		{"release of an unknown order", "POST", "/api/v1/reservations/o-0/release", `{}`,
			http.StatusNotFound, `order "o-0" has no reservation`},
		{"reserve after releasing an unknown order", "PUT", "/api/v1/reservations/o-0", `{"items":[{"productId":"` + widget + `","quantity":"1"}]}`,
			http.StatusBadRequest, `order "o-0" was cancelled before its stock was reserved`},
	} {
		code, body := in.do(c.method, c.path, c.body)
		if code != c.code || !strings.Contains(fmt.Sprint(body), c.message) {
			t.Errorf("%s: %d %v; want %d with %q", c.name, code, body, c.code, c.message)
		}
	}
	if a, r := in.stock(widget); a != 10 || r != 0 {
		t.Fatalf("after bad input: widget available %d reserved %d, want 10 and 0", a, r)
	}
	if a, r := in.stock(gadget.GetId()); a != 1 || r != 0 {
		t.Fatalf("after bad input: gadget available %d reserved %d, want 1 and 0", a, r)
	}

	// The order service's path over gRPC: reserve (twice), commit (twice).
	req := &inventoryv1.ReserveStockRequest{OrderId: "o-1", Items: []*inventoryv1.Item{{ProductId: widget, Quantity: 3}}}
	for range 2 {
		r, err := in.client.ReserveStock(as(serviceKey), req)
		if err != nil || r.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_PENDING {
			t.Fatalf("reserve: %v %v", r, err)
		}
	}
	if a, r := in.stock(widget); a != 7 || r != 3 {
		t.Fatalf("after reserve: available %d reserved %d, want 7 and 3", a, r)
	}
	req.Items[0].Quantity = 4
	if _, err := in.client.ReserveStock(as(serviceKey), req); status.Code(err) != codes.AlreadyExists ||
		!strings.Contains(err.Error(), "different items") {
		t.Fatalf("reserve with other items: %v", err)
	}
	for range 2 {
		r, err := in.client.CommitReservation(as(serviceKey), &inventoryv1.CommitReservationRequest{OrderId: "o-1"})
		if err != nil || r.GetState() != inventoryv1.ReservationState_RESERVATION_STATE_COMMITTED {
			t.Fatalf("commit: %v %v", r, err)
		}
	}
	if a, r := in.stock(widget); a != 7 || r != 0 {
		t.Fatalf("after commit: available %d reserved %d, want 7 and 0", a, r)
	}
	code, body = in.do("POST", "/api/v1/reservations/o-1/release", `{}`)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "it is committed") {
		t.Fatalf("release after commit: %d %v", code, body)
	}

	// Compensation over HTTP: reserve, release twice, stock back.
	code, body = in.do("PUT", "/api/v1/reservations/o-2", `{"items":[{"productId":"`+widget+`","quantity":"2"}]}`)
	if code != http.StatusOK || body["state"] != "RESERVATION_STATE_PENDING" {
		t.Fatalf("reserve over HTTP: %d %v", code, body)
	}
	for range 2 {
		code, body = in.do("POST", "/api/v1/reservations/o-2/release", `{}`)
		if code != http.StatusOK || body["state"] != "RESERVATION_STATE_RELEASED" {
			t.Fatalf("release over HTTP: %d %v", code, body)
		}
	}
	if a, r := in.stock(widget); a != 7 || r != 0 {
		t.Fatalf("after release: available %d reserved %d, want 7 and 0", a, r)
	}

	// The container health probe finds the ready admin port.
	var out, errb strings.Builder
	if code := run([]string{"--health-check"}, config.FromMap(map[string]string{"ADMIN_ADDR": in.addrs.Admin.String()}), &out, &errb); code != 0 {
		t.Errorf("--health-check: exit %d, %s", code, errb.String())
	}

	// RBAC: the order service cannot change stock by hand.
	if _, err := in.client.AdjustStock(as(serviceKey), &inventoryv1.AdjustStockRequest{ProductId: widget, Delta: 1}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("adjust as service: %v, want PermissionDenied", err)
	}
}

// TestUncommittedReservationsExpire checks the sweeper gives stock back
// when nobody asks about the order again.
func TestUncommittedReservationsExpire(t *testing.T) {
	in := start(t, map[string]string{"RESERVATION_TTL": "1s", "RESERVATION_SWEEP_INTERVAL": "50ms"})
	p, err := in.client.CreateProduct(as(adminKey), &inventoryv1.CreateProductRequest{Sku: "W", Name: "Widget", InitialStock: 4})
	if err != nil {
		t.Fatal(err)
	}
	r, err := in.client.ReserveStock(as(serviceKey), &inventoryv1.ReserveStockRequest{OrderId: "o-1",
		Items: []*inventoryv1.Item{{ProductId: p.GetId(), Quantity: 4}}})
	if err != nil {
		t.Fatal(err)
	}
	if ttl := r.GetExpireTime().AsTime().Sub(r.GetCreateTime().AsTime()); ttl != time.Second {
		t.Fatalf("reservation lasts %s, want RESERVATION_TTL=1s", ttl)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if a, res := in.stock(p.GetId()); a == 4 && res == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("expired reservation never released its stock")
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, err = in.client.CommitReservation(as(serviceKey), &inventoryv1.CommitReservationRequest{OrderId: "o-1"})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "it is expired") {
		t.Fatalf("commit after expiry: %v", err)
	}
}

func TestVersionAndBadConfig(t *testing.T) {
	var out, errb strings.Builder
	if code := run([]string{"--version"}, config.FromMap(nil), &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "inventory ") {
		t.Fatalf("--version: %d %q %q", code, out.String(), errb.String())
	}
	out.Reset()
	code := run(nil, config.FromMap(map[string]string{"RESERVATION_TTL": "0s"}), &out, &errb)
	if code != 2 || !strings.Contains(errb.String(), "RESERVATION_TTL") {
		t.Fatalf("bad RESERVATION_TTL: exit %d, stderr %q", code, errb.String())
	}
}
