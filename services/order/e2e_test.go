package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	inventoryv1 "github.com/msctl/msctl/services/inventory/api/inventoryv1"
	"github.com/msctl/msctl/services/kit/host/hosttest"
	"github.com/msctl/msctl/services/kit/idempotency"
	orderv1 "github.com/msctl/msctl/services/order/api/orderv1"
	"github.com/msctl/msctl/services/order/internal/app"
	"github.com/msctl/msctl/services/order/internal/orderapi"
	"github.com/msctl/msctl/services/order/internal/servicetest"
	"github.com/msctl/msctl/services/order/orderclient"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
)

func TestMain(m *testing.M) { servicetest.Main(m) }

const declineCard = "tok-always-declines"

// system is the four services on loopback: the dependencies as binaries,
// the order service in process.
type system struct {
	t         *testing.T
	addrs     app.Addrs
	orders    orderv1.OrderServiceClient
	conn      *grpc.ClientConn
	inventory *servicetest.Service
	userID    string
	product   string // 500 cents, 5 in stock
}

func start(t *testing.T) *system {
	t.Helper()
	user := servicetest.Start(t, "user")
	inv := servicetest.Start(t, "inventory")
	pay := servicetest.Start(t, "payment", "PAYMENT_DECLINE_CARDS="+declineCard)
	ctx := servicetest.AsAdmin(context.Background())
	u, err := userv1.NewUserServiceClient(user.Conn).CreateUser(ctx, &userv1.CreateUserRequest{Email: "grace@example.com", FullName: "Grace"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := inventoryv1.NewInventoryServiceClient(inv.Conn).CreateProduct(ctx, &inventoryv1.CreateProductRequest{
		Sku: "mug", Name: "Mug", PriceCents: 500, InitialStock: 5})
	if err != nil {
		t.Fatal(err)
	}
	a, conn := hosttest.Start(t, hosttest.Env(t, "order.db", map[string]string{
		"SAGA_RESUME_INTERVAL": "200ms", "USER_ADDR": user.GRPC, "INVENTORY_ADDR": inv.GRPC, "PAYMENT_ADDR": pay.GRPC,
	}), app.LoadConfig, app.New)
	return &system{t: t, addrs: a.Addrs(), orders: orderv1.NewOrderServiceClient(conn), conn: conn, inventory: inv, userID: u.GetId(), product: p.GetId()}
}

// do sends an HTTP request to the gateway with the admin key.
func (s *system) do(method, path, body string) (*http.Response, map[string]any) {
	s.t.Helper()
	req, err := http.NewRequest(method, "http://"+s.addrs.HTTP.String()+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("X-Api-Key", servicetest.AdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		s.t.Fatalf("%s %s: %d, body is not JSON: %q", method, path, resp.StatusCode, raw)
	}
	return resp, out
}

func (s *system) admin(path string) string {
	s.t.Helper()
	resp, err := http.Get("http://" + s.addrs.Admin.String() + path)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}

func (s *system) orderBody(token string, qty int) string {
	return fmt.Sprintf(`{"user_id":%q,"items":[{"product_id":%q,"quantity":%d}],"payment_method_token":%q}`, s.userID, s.product, qty, token)
}

func TestOrderOverHTTP(t *testing.T) {
	s := start(t)
	resp, body := s.do("POST", "/api/v1/orders", s.orderBody("tok-4242", 2))
	if resp.StatusCode != http.StatusCreated || body["status"] != "ORDER_STATUS_CONFIRMED" || body["amountCents"] != "1000" ||
		resp.Header.Get("Location") != "/api/v1/orders/"+body["id"].(string) {
		t.Fatalf("CreateOrder: %d (Location %q) %v", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	variant := resp.Header.Get(orderapi.ExperimentHeader)
	if (variant != "control" && variant != "one_page") || body["experimentVariant"] != variant {
		t.Fatalf("experiment header %q, body variant %v", variant, body["experimentVariant"])
	}
	id := body["id"].(string)
	if resp, got := s.do("GET", "/api/v1/orders/"+id, ""); resp.StatusCode != http.StatusOK || got["status"] != "ORDER_STATUS_CONFIRMED" {
		t.Fatalf("GetOrder: %d %v", resp.StatusCode, got)
	}
	// A declined card: the caller gets a clear error, the order is kept FAILED.
	resp, body = s.do("POST", "/api/v1/orders", s.orderBody(declineCard, 1))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "payment declined") {
		t.Fatalf("declined order: %d %v", resp.StatusCode, body)
	}
	// A body naming another order than the path is refused.
	resp, body = s.do("POST", "/api/v1/orders/"+id+"/cancel", `{"id":"01900000-0000-7000-8000-000000000000"}`)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "the path says") {
		t.Fatalf("cancel with another id in the body: %d %v", resp.StatusCode, body)
	}
	// Cancelling a finished order changes nothing.
	resp, body = s.do("POST", "/api/v1/orders/"+id+"/cancel", "{}")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "already confirmed") {
		t.Fatalf("cancel of a confirmed order: %d %v", resp.StatusCode, body)
	}
	if resp, body := s.do("GET", "/api/v1/orders/no-such-order", ""); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown order: %d %v", resp.StatusCode, body)
	}
	if resp, body := s.do("POST", "/api/v1/orders", s.orderBody("tok", 0)); resp.StatusCode != http.StatusBadRequest ||
		!strings.Contains(fmt.Sprint(body), "quantity") {
		t.Fatalf("zero quantity: %d %v", resp.StatusCode, body)
	}

	// Paging: two orders, one per page, then the end.
	resp, page := s.do("GET", "/api/v1/orders?page_size=1", "")
	tok, _ := page["nextPageToken"].(string)
	if resp.StatusCode != http.StatusOK || len(page["orders"].([]any)) != 1 || tok == "" {
		t.Fatalf("first page: %v", page)
	}
	_, page = s.do("GET", "/api/v1/orders?page_size=1&page_token="+tok, "")
	if len(page["orders"].([]any)) != 1 {
		t.Fatalf("second page: %v", page)
	}
	if tok, _ := page["nextPageToken"].(string); tok != "" {
		_, last := s.do("GET", "/api/v1/orders?page_size=1&page_token="+tok, "")
		if len(last["orders"].([]any)) != 0 {
			t.Fatalf("a third page for two orders: %v", last)
		}
	}

	metrics := s.admin("/metrics")
	for _, want := range []string{
		`order_saga_finished_total{outcome="confirmed"} 1`,
		`order_saga_finished_total{outcome="failed"} 1`,
		`experiment_exposures_total{experiment="checkout-flow",variant="` + variant + `"}`,
		`circuit_breaker_state{service="order",target="inventory"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if b := s.admin("/debug/breakers"); !strings.Contains(b, `"target":"payment"`) {
		t.Errorf("/debug/breakers: %s", b)
	}
}

func TestGRPCErrorsAndHeader(t *testing.T) {
	s := start(t)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", servicetest.AdminKey)
	var hdr metadata.MD
	o, err := s.orders.CreateOrder(ctx, &orderv1.CreateOrderRequest{UserId: s.userID, PaymentMethodToken: "tok",
		Items: []*orderv1.Item{{ProductId: s.product, Quantity: 1}}}, grpc.Header(&hdr))
	if err != nil || o.GetStatus() != orderv1.OrderStatus_ORDER_STATUS_CONFIRMED {
		t.Fatalf("CreateOrder: %v %v", o, err)
	}
	if v := hdr.Get(orderapi.ExperimentHeader); len(v) != 1 || v[0] != o.GetExperimentVariant() {
		t.Fatalf("header %v, order variant %q", v, o.GetExperimentVariant())
	}
	_, err = s.orders.CreateOrder(ctx, &orderv1.CreateOrderRequest{UserId: s.userID, PaymentMethodToken: "tok",
		Items: []*orderv1.Item{{ProductId: s.product, Quantity: 5}}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "inventory") {
		t.Fatalf("too little stock: %v", err)
	}
	_, err = s.orders.CreateOrder(ctx, &orderv1.CreateOrderRequest{UserId: s.userID, PaymentMethodToken: "tok",
		Items: []*orderv1.Item{{ProductId: "0190a6e4-6b2c-7c1e-8f00-2b6d2a1e9c3d", Quantity: 1}}})
	if status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "inventory") {
		t.Fatalf("unknown product: %v", err)
	}
	before, err := s.orders.ListOrders(ctx, &orderv1.ListOrdersRequest{})
	if err != nil || len(before.GetOrders()) == 0 {
		t.Fatalf("ListOrders: %v, %v", before, err)
	}
	_, err = s.orders.CreateOrder(ctx, &orderv1.CreateOrderRequest{UserId: s.userID, PaymentMethodToken: "tok",
		Items: []*orderv1.Item{{ProductId: "no-such-product", Quantity: 1}}})
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "items[0].product_id") {
		t.Fatalf("malformed product id: %v", err)
	}
	if after, err := s.orders.ListOrders(ctx, &orderv1.ListOrdersRequest{}); err != nil || len(after.GetOrders()) != len(before.GetOrders()) {
		t.Fatalf("a malformed request stored an order (%v): %d orders, before %d", err, len(after.GetOrders()), len(before.GetOrders()))
	}
	if _, err := s.orders.GetOrder(context.Background(), &orderv1.GetOrderRequest{Id: o.GetId()}); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no credentials: %v", err)
	}
	p, err := inventoryv1.NewInventoryServiceClient(s.inventory.Conn).GetProduct(servicetest.AsAdmin(context.Background()),
		&inventoryv1.GetProductRequest{Id: s.product})
	if err != nil || p.GetAvailable() != 4 || p.GetReserved() != 0 {
		t.Fatalf("stock after one sale and two failures: %v %v", p, err)
	}
}

// TestInventoryDownOpensBreakerOverHTTP: with inventory killed, orders fail
// with 503 and compensate; after BREAKER_FAILURES of them the breaker opens,
// which the admin port shows at /metrics and /debug/breakers while the
// order service stays ready.
func TestInventoryDownOpensBreakerOverHTTP(t *testing.T) {
	s := start(t)
	s.inventory.Kill()
	var body map[string]any
	for i := range 6 { // the default BREAKER_FAILURES is 5
		var resp *http.Response
		resp, body = s.do("POST", "/api/v1/orders", s.orderBody("tok", 1))
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(fmt.Sprint(body), "inventory unavailable") {
			t.Fatalf("order %d with inventory down: %d %v", i, resp.StatusCode, body)
		}
	}
	if !strings.Contains(fmt.Sprint(body), "circuit breaker open") {
		t.Fatalf("the sixth order was not refused by the open breaker: %v", body)
	}
	if m := s.admin("/metrics"); !strings.Contains(m, `circuit_breaker_state{service="order",target="inventory"} 2`) {
		t.Errorf("/metrics does not show inventory's breaker open")
	}
	var doc struct {
		Breakers []struct{ Target, State string }
	}
	if err := json.Unmarshal([]byte(s.admin("/debug/breakers")), &doc); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, b := range doc.Breakers {
		states[b.Target] = b.State
	}
	if states["inventory"] != "open" || states["payment"] != "closed" || states["user"] != "closed" {
		t.Errorf("/debug/breakers states %v, want inventory open, the others closed", states)
	}
	ready, err := http.Get("http://" + s.addrs.Admin.String() + "/health/ready")
	if err != nil {
		t.Fatal(err)
	}
	ready.Body.Close()
	if ready.StatusCode != http.StatusOK {
		t.Errorf("readiness %d with a dependency's breaker open, want 200", ready.StatusCode)
	}
	resp, list := s.do("GET", "/api/v1/orders", "")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("ListOrders: %d %v", resp.StatusCode, list)
	}
	for _, o := range list["orders"].([]any) {
		if st := o.(map[string]any)["status"]; st != "ORDER_STATUS_FAILED" {
			t.Errorf("order %v ended %v, want FAILED", o.(map[string]any)["id"], st)
		}
	}
}

// TestCreateOrderRetriedWithIdempotencyKey: a client that retries
// CreateOrder with the same key (after a timeout, say) gets the first
// order back and pays once; the same key with other items is refused.
func TestCreateOrderRetriedWithIdempotencyKey(t *testing.T) {
	s := start(t)
	body := func(qty int) string {
		return fmt.Sprintf(`{"user_id":%q,"items":[{"product_id":%q,"quantity":%d}],"payment_method_token":"tok","idempotency_key":"checkout-42"}`,
			s.userID, s.product, qty)
	}
	resp, first := s.do("POST", "/api/v1/orders", body(2))
	if resp.StatusCode != http.StatusCreated || first["status"] != "ORDER_STATUS_CONFIRMED" {
		t.Fatalf("first CreateOrder: %d %v", resp.StatusCode, first)
	}
	resp, again := s.do("POST", "/api/v1/orders", body(2))
	if resp.StatusCode != http.StatusCreated || again["id"] != first["id"] {
		t.Fatalf("retried CreateOrder: %d %v, want order %v again", resp.StatusCode, again, first["id"])
	}
	resp, other := s.do("POST", "/api/v1/orders", body(1))
	if resp.StatusCode != http.StatusConflict || !strings.Contains(fmt.Sprint(other), "idempotency_key") {
		t.Fatalf("the key with other items: %d %v", resp.StatusCode, other)
	}
	p, err := inventoryv1.NewInventoryServiceClient(s.inventory.Conn).GetProduct(servicetest.AsAdmin(context.Background()),
		&inventoryv1.GetProductRequest{Id: s.product})
	if err != nil || p.GetAvailable() != 3 {
		t.Fatalf("stock after one order of 2 sent twice: %v %v, want 3 available", p, err)
	}
	_, list := s.do("GET", "/api/v1/orders", "")
	if n := len(list["orders"].([]any)); n != 1 {
		t.Fatalf("%d orders stored, want 1", n)
	}
}

// TestIdempotencyKeyWithoutABodyKey: the key also comes as the HTTP
// Idempotency-Key header or gRPC metadata, the gateway makes one up (and
// says which) for a POST that has none, and the order client always sends
// one; each way, sending the same request again finds the first order.
func TestIdempotencyKeyWithoutABodyKey(t *testing.T) {
	s := start(t)
	post := func(key string) (*http.Response, map[string]any) {
		t.Helper()
		req, err := http.NewRequest("POST", "http://"+s.addrs.HTTP.String()+"/api/v1/orders", strings.NewReader(s.orderBody("tok", 1)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Api-Key", servicetest.AdminKey)
		if key != "" {
			req.Header.Set(idempotency.Header, key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp, out
	}
	same := func(how string, first, again map[string]any) {
		t.Helper()
		if first["id"] == nil || again["id"] != first["id"] {
			t.Fatalf("%s: the repeat answered %v, want order %v again", how, again, first["id"])
		}
	}

	resp, first := post("checkout-7")
	if got := resp.Header.Get(idempotency.Header); got != "checkout-7" {
		t.Fatalf("response Idempotency-Key %q, want the caller's", got)
	}
	_, again := post("checkout-7")
	same("the Idempotency-Key header", first, again)

	resp, first = post("")
	made := resp.Header.Get(idempotency.Header)
	if made == "" {
		t.Fatalf("no Idempotency-Key in the answer to a POST without one: %v", resp.Header)
	}
	_, again = post(made)
	same("the gateway's key, sent back", first, again)

	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", servicetest.AdminKey, idempotency.MetadataKey, "grpc-9")
	req := func() *orderv1.CreateOrderRequest {
		return &orderv1.CreateOrderRequest{UserId: s.userID, PaymentMethodToken: "tok", Items: []*orderv1.Item{{ProductId: s.product, Quantity: 1}}}
	}
	o1, err := s.orders.CreateOrder(ctx, req())
	if err != nil {
		t.Fatal(err)
	}
	o2, err := s.orders.CreateOrder(ctx, req())
	if err != nil || o2.GetId() != o1.GetId() {
		t.Fatalf("the idempotency-key metadata: repeat %v (%v), want order %s", o2.GetId(), err, o1.GetId())
	}
	conflicting := req()
	conflicting.IdempotencyKey = "other"
	if _, err := s.orders.CreateOrder(ctx, conflicting); status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "disagrees") {
		t.Fatalf("body and metadata keys that disagree: %v", err)
	}

	client := orderclient.New(s.conn)
	admin := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", servicetest.AdminKey)
	r := req()
	c1, err := client.Create(admin, r)
	if err != nil || r.GetIdempotencyKey() == "" {
		t.Fatalf("orderclient.Create: %v, key %q", err, r.GetIdempotencyKey())
	}
	c2, err := client.Create(admin, r)
	if err != nil || c2.GetId() != c1.GetId() {
		t.Fatalf("orderclient.Create again: %v (%v), want order %s", c2.GetId(), err, c1.GetId())
	}

	p, err := inventoryv1.NewInventoryServiceClient(s.inventory.Conn).GetProduct(servicetest.AsAdmin(context.Background()),
		&inventoryv1.GetProductRequest{Id: s.product})
	if err != nil || p.GetAvailable() != 1 {
		t.Fatalf("stock after four orders of one, each sent twice: %v %v, want 1 available", p, err)
	}
}
