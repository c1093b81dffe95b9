package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/msctl/msctl/services/kit/storage/pgtest"
	userv1 "github.com/msctl/msctl/services/user/api/userv1"
	"github.com/msctl/msctl/services/user/userclient"
)

func TestCRUDOverHTTPAndGRPC(t *testing.T) {
	in := start(t, nil)
	admin := apiKey(adminKey)

	code, body := in.do("POST", "/api/v1/users", `{"email":" Grace@Example.COM ","fullName":"Grace Hopper",
		"preferences":{"emailNotifications":false,"timezone":"America/New_York","language":"en-us"}}`, admin)
	if code != http.StatusCreated || body["email"] != "grace@example.com" || body["version"] != "1" || body["status"] != "STATUS_ACTIVE" {
		t.Fatalf("create over HTTP: %d %v", code, body)
	}
	id := body["id"].(string)

	// Read it back over gRPC.
	u, err := in.client.GetUser(asAdmin(), &userv1.GetUserRequest{Id: id})
	if err != nil || u.GetFullName() != "Grace Hopper" || u.GetPreferences().GetLanguage() != "en-US" {
		t.Fatalf("get over gRPC: %v %v", u, err)
	}

	// Update over gRPC with the version we read.
	name := "Rear Admiral Grace Hopper"
	u2, err := in.client.UpdateUser(asAdmin(), &userv1.UpdateUserRequest{Id: id, ExpectedVersion: 1, FullName: &name, Status: userv1.Status_STATUS_INACTIVE})
	if err != nil || u2.GetVersion() != 2 || u2.GetStatus() != userv1.Status_STATUS_INACTIVE {
		t.Fatalf("update: %v %v", u2, err)
	}

	// The same update again is stale: Aborted over gRPC, 409 over HTTP.
	if _, err := in.client.UpdateUser(asAdmin(), &userv1.UpdateUserRequest{Id: id, ExpectedVersion: 1, FullName: &name}); status.Code(err) != codes.Aborted {
		t.Fatalf("stale update over gRPC: %v, want Aborted", err)
	}
	code, body = in.do("PATCH", "/api/v1/users/"+id, `{"expectedVersion":"1","fullName":"X"}`, admin)
	if code != http.StatusConflict || !strings.Contains(fmt.Sprint(body), "stale version") {
		t.Fatalf("stale update over HTTP: %d %v", code, body)
	}

	// A forbidden status change is a 400 with the rule in the message.
	code, body = in.do("PATCH", "/api/v1/users/"+id, `{"expectedVersion":"2","status":"STATUS_SUSPENDED"}`, admin)
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "cannot change from inactive to suspended") {
		t.Fatalf("forbidden transition: %d %v", code, body)
	}

	// A duplicate email, differently cased, is AlreadyExists / 409.
	code, body = in.do("POST", "/api/v1/users", `{"email":"GRACE@example.com","fullName":"Impostor"}`, admin)
	if code != http.StatusConflict || body["error"].(map[string]any)["status"] != "ALREADY_EXISTS" {
		t.Fatalf("duplicate email: %d %v", code, body)
	}
	if _, err := in.client.CreateUser(asAdmin(), &userv1.CreateUserRequest{Email: "grace@example.com", FullName: "Again"}); status.Code(err) != codes.AlreadyExists {
		t.Fatalf("duplicate email over gRPC: %v", err)
	}

	// Delete at the current version, then it is gone.
	code, _ = in.do("DELETE", "/api/v1/users/"+id+"?expectedVersion=2", "", admin)
	if code != http.StatusOK {
		t.Fatalf("delete: %d", code)
	}
	code, body = in.do("GET", "/api/v1/users/"+id, "", admin)
	if code != http.StatusNotFound {
		t.Fatalf("get after delete: %d %v", code, body)
	}
}

func TestPagination(t *testing.T) {
	in := start(t, nil)
	var want []string
	for i := range 7 {
		u, err := in.client.CreateUser(asAdmin(), &userv1.CreateUserRequest{Email: fmt.Sprintf("p%d@example.com", i), FullName: "P"})
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, u.GetId())
	}
	var got []string
	for u, err := range userclient.New(in.conn).ListUsers(asAdmin(), userclient.ListOptions{PageSize: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u.GetId())
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ListUsers iterator: %v, want %v", got, want)
	}

	// The same over HTTP, following nextPageToken by hand.
	var pages int
	token := ""
	got = nil
	for {
		code, body := in.do("GET", "/api/v1/users?pageSize=4&pageToken="+token, "", apiKey(readerKey))
		if code != http.StatusOK {
			t.Fatalf("list page: %d %v", code, body)
		}
		for _, u := range body["users"].([]any) {
			got = append(got, u.(map[string]any)["id"].(string))
		}
		pages++
		token = body["nextPageToken"].(string)
		if token == "" {
			break
		}
	}
	if pages != 2 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("HTTP paging: %d pages, %v", pages, got)
	}
	code, body := in.do("GET", "/api/v1/users?pageToken=forged", "", apiKey(readerKey))
	if code != http.StatusBadRequest || !strings.Contains(fmt.Sprint(body), "page_token") {
		t.Fatalf("forged page token: %d %v", code, body)
	}
}

// TestBadInput sends every kind of bad request and checks the status, the
// message, that nothing changed, and that no credential reached the log.
func TestBadInput(t *testing.T) {
	in := start(t, nil)
	c := testCreds(t)
	u, err := in.client.CreateUser(asAdmin(), &userv1.CreateUserRequest{Email: "keep@example.com", FullName: "Keep"})
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, in)

	admin := bearer(c.token(t, []string{"admin"}, nil))
	path := "/api/v1/users"
	one := path + "/" + u.GetId()
	pubHS256, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "x",
		"roles": []string{"admin"}, "exp": time.Now().Add(time.Hour).Unix()}).SignedString(c.pubPEM)
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims{"iss": testIssuer, "aud": testAudience, "sub": "x",
		"roles": []string{"admin"}, "exp": time.Now().Add(time.Hour).Unix()}).SignedString(jwt.UnsafeAllowNoneSignatureType)
	c.secrets = append(c.secrets, pubHS256, none)
	valid := `{"email":"new@example.com","fullName":"New"}`
	big := `{"email":"big@example.com","fullName":"` + strings.Repeat("x", 2<<20) + `"}`

	cases := []struct {
		name, method, path, body string
		header                   http.Header
		chunked                  bool
		want                     int
		msg                      string
	}{
		{"malformed JSON", "POST", path, `{"email":`, admin, false, 400, "unexpected"},
		{"unknown field", "POST", path, `{"email":"a@example.com","fullName":"A","isAdmin":true}`, admin, false, 400, `unknown field \"isAdmin\"`},
		{"invalid email", "POST", path, `{"email":"not-an-email","fullName":"A"}`, admin, false, 400, "email: is not a valid address"},
		{"empty name", "POST", path, `{"email":"a@example.com","fullName":"  "}`, admin, false, 400, "full_name: is required"},
		{"unknown time zone", "POST", path, `{"email":"a@example.com","fullName":"A","preferences":{"timezone":"Moon/Base","language":"en"}}`, admin, false, 400, "not a known IANA time zone"},
		{"path id not a UUID", "GET", path + "/42", "", admin, false, 400, "is not a UUID"},
		{"version of the wrong type", "PATCH", one, `{"expectedVersion":"first","fullName":"B"}`, admin, false, 400, `expectedVersion: invalid value \"first\" for an int64 field`},
		{"missing expected version", "PATCH", one, `{"fullName":"B"}`, admin, false, 400, "expected_version: is required"},
		{"oversized body", "POST", path, big, admin, false, 413, "too large"},
		{"oversized chunked body", "POST", path, big, admin, true, 413, "too large"},
		{"page size too big", "GET", path + "?pageSize=100000", "", admin, false, 400, "page_size"},
		{"missing token", "POST", path, valid, nil, false, 401, "missing credentials"},
		{"alg none", "POST", path, valid, bearer(none), false, 401, "unsupported algorithm"},
		{"HS256 keyed with the public key", "POST", path, valid, bearer(pubHS256), false, 401, "unsupported algorithm"},
		{"wrong issuer", "POST", path, valid, bearer(c.token(t, []string{"admin"}, func(m jwt.MapClaims) { m["iss"] = "https://evil.test" })), false, 401, "wrong issuer"},
		{"wrong audience", "POST", path, valid, bearer(c.token(t, []string{"admin"}, func(m jwt.MapClaims) { m["aud"] = "payment" })), false, 401, "wrong audience"},
		{"expired", "POST", path, valid, bearer(c.token(t, []string{"admin"}, func(m jwt.MapClaims) { m["exp"] = time.Now().Add(-time.Hour).Unix() })), false, 401, "expired"},
		{"not a bearer scheme", "POST", path, valid, http.Header{"Authorization": {"Basic YWRtaW46YWRtaW4="}}, false, 401, "Bearer"},
		{"unknown API key", "POST", path, valid, apiKey("key-guess-0123456789"), false, 401, "unknown or expired API key"},
		{"reader may not write", "POST", path, valid, apiKey(readerKey), false, 403, "may not call"},
		{"reader may not delete", "DELETE", one, "", bearer(c.token(t, []string{"reader"}, nil)), false, 403, "may not call"},
		{"rate-limited key, first call", "GET", one, "", apiKey(slowKey), false, 200, ""},
		{"rate-limited key, second call", "GET", one, "", apiKey(slowKey), false, 429, "rate limit"},
		{"no route", "GET", "/api/v2/users", "", admin, false, 404, "no route"},
		{"wrong method", "PUT", one, "", admin, false, 405, "allowed: GET, PATCH, DELETE"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = io.MultiReader(strings.NewReader(tc.body)) // unknown length: sent chunked
			}
			req, _ := http.NewRequest(tc.method, "http://"+in.addrs.HTTP.String()+tc.path, body)
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want || !strings.Contains(string(raw), tc.msg) {
				t.Fatalf("got %d %s, want %d containing %q", resp.StatusCode, raw, tc.want, tc.msg)
			}
			if tc.want >= 400 && (resp.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(raw), `"error"`)) {
				t.Fatalf("error body is not the JSON error document: %s", raw)
			}
		})
	}
	if after := snapshot(t, in); after != before {
		t.Fatalf("bad input changed state:\nbefore %s\nafter  %s", before, after)
	}
	logs := in.log.String()
	for _, s := range c.secrets {
		if strings.Contains(logs, s) {
			t.Fatalf("a credential reached the log")
		}
	}
	if !strings.Contains(logs, `"reason":"invalid token: wrong issuer"`) {
		t.Fatalf("auth failures are not logged with their reason")
	}
}

// snapshot summarises every user and the event count, to prove that
// rejected requests changed nothing.
func snapshot(t *testing.T, in *instance) string {
	t.Helper()
	var b strings.Builder
	for u, err := range userclient.New(in.conn).ListUsers(asAdmin(), userclient.ListOptions{}) {
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s/%d;", u.GetEmail(), u.GetVersion())
	}
	ctx, cancel := context.WithTimeout(asAdmin(), 300*time.Millisecond)
	defer cancel()
	stream, err := in.client.StreamUserActivity(ctx, &userv1.StreamUserActivityRequest{Since: timestamppb.New(time.Unix(0, 0))})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for {
		if _, err := stream.Recv(); err != nil {
			break
		}
		n++
	}
	fmt.Fprintf(&b, " events=%d", n)
	return b.String()
}

// TestStreamingAcrossInstances writes through two replicas on one
// PostgreSQL database while subscribers on both read: each must see every
// event exactly once, in id order.
func TestStreamingAcrossInstances(t *testing.T) {
	_, url := pgtest.Database(t)
	a := start(t, map[string]string{"DATABASE_URL": url})
	b := start(t, map[string]string{"DATABASE_URL": url})
	since := timestamppb.New(time.Now().Add(-time.Minute))

	const writers, each = 4, 10
	const total = writers * each * 2 // a create and an update per user
	type result struct {
		ids []int64
		err error
	}
	subscribe := func(in *instance) <-chan result {
		out := make(chan result, 1)
		ctx, cancel := context.WithTimeout(asAdmin(), 30*time.Second)
		stream, err := in.client.StreamUserActivity(ctx, &userv1.StreamUserActivityRequest{Since: since})
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			defer cancel()
			var r result
			for len(r.ids) < total {
				e, err := stream.Recv()
				if err != nil {
					r.err = err
					break
				}
				r.ids = append(r.ids, e.GetId())
			}
			out <- r
		}()
		return out
	}
	subs := []<-chan result{subscribe(a), subscribe(b)}

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				in := []*instance{a, b}[(w+i)%2]
				u, err := in.client.CreateUser(asAdmin(), &userv1.CreateUserRequest{Email: fmt.Sprintf("s%d-%d@example.com", w, i), FullName: "S"})
				if err != nil {
					t.Error(err)
					return
				}
				other := []*instance{b, a}[(w+i)%2]
				if _, err := other.client.UpdateUser(asAdmin(), &userv1.UpdateUserRequest{Id: u.GetId(), ExpectedVersion: 1, FullName: proto.String("S2")}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for i, sub := range subs {
		r := <-sub
		if r.err != nil {
			t.Fatalf("subscriber %d: %v after %d events", i, r.err, len(r.ids))
		}
		seen := map[int64]bool{}
		for j, id := range r.ids {
			if seen[id] || (j > 0 && id <= r.ids[j-1]) {
				t.Fatalf("subscriber %d: event %d duplicated or out of order", i, id)
			}
			seen[id] = true
		}
		if len(seen) != total {
			t.Fatalf("subscriber %d saw %d events, want %d", i, len(seen), total)
		}
	}
}

// TestReadinessFollowsDatabase takes the database away for real (no new
// connections allowed, existing sessions terminated) and brings it back.
func TestReadinessFollowsDatabase(t *testing.T) {
	name, url := pgtest.Database(t)
	in := start(t, map[string]string{"DATABASE_URL": url})
	check := func() healthStatus {
		code, _ := in.adminGet("/health/ready")
		return healthStatus(code)
	}
	if check() != http.StatusOK {
		t.Fatal("not ready with the database up")
	}
	pgtest.Exec(t, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS false")
	pgtest.Exec(t, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
	in.waitReady(false)
	_, body := in.adminGet("/health/ready")
	if !strings.Contains(body, "database") {
		t.Fatalf("readiness body does not name the database: %s", body)
	}
	if _, err := in.client.GetUser(asAdmin(), &userv1.GetUserRequest{Id: "01900000-0000-7000-8000-000000000000"}); status.Code(err) != codes.Unavailable {
		t.Fatalf("call with the database gone: %v, want Unavailable", err)
	}
	pgtest.Exec(t, "ALTER DATABASE "+name+" WITH ALLOW_CONNECTIONS true")
	in.waitReady(true)
}

type healthStatus int

// TestCallsBeforeTheDatabaseOpens: with PostgreSQL late (nothing listens
// on its port), the service starts and answers at once: a call over gRPC
// and over HTTP gets Unavailable (503) saying the database is not ready,
// after auth like any call (401 without credentials).
func TestCallsBeforeTheDatabaseOpens(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	late := "postgres://postgres@" + l.Addr().String() + "/late?connect_timeout=1"
	_ = l.Close()
	in := launch(t, map[string]string{"DATABASE_URL": late}, &logBuffer{})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := in.adminGet("/health/startup"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the startup probe never passed")
		}
	}
	const id = "01900000-0000-7000-8000-000000000000"
	_, err = in.client.GetUser(asAdmin(), &userv1.GetUserRequest{Id: id})
	if st := status.Convert(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "database not ready yet") {
		t.Fatalf("gRPC call before the database opened: %v, want Unavailable, database not ready", err)
	}
	if code, body := in.do("GET", "/api/v1/users/"+id, "", apiKey(adminKey)); code != http.StatusServiceUnavailable ||
		!strings.Contains(fmt.Sprint(body), "database not ready yet") {
		t.Fatalf("HTTP call before the database opened: %d %v, want 503, database not ready", code, body)
	}
	if code, _ := in.do("GET", "/api/v1/users/"+id, "", nil); code != http.StatusUnauthorized {
		t.Fatalf("HTTP call without credentials: %d, want 401", code)
	}
}

// TestRequestIDAndMetrics checks the request id round-trips and the
// admin port exposes the chain's metrics without auth.
func TestRequestIDAndMetrics(t *testing.T) {
	in := start(t, nil)
	var hdr metadata.MD
	ctx := metadata.AppendToOutgoingContext(asAdmin(), "x-request-id", "req-123")
	_, err := in.client.GetUser(ctx, &userv1.GetUserRequest{Id: "01900000-0000-7000-8000-000000000000"}, grpcHeader(&hdr))
	if status.Code(err) != codes.NotFound || fmt.Sprint(hdr.Get("x-request-id")) != "[req-123]" {
		t.Fatalf("GetUser: %v, request id %v", err, hdr.Get("x-request-id"))
	}
	code, body := in.adminGet("/metrics")
	for _, want := range []string{
		`grpc_server_handled_total{code="NotFound",method="/msctl.user.v1.UserService/GetUser"} 1`,
		`build_info{commit=`, `go_goroutines`, `process_resident_memory_bytes`,
	} {
		if code != 200 || !strings.Contains(body, want) {
			t.Fatalf("/metrics lacks %q", want)
		}
	}
	if code, body := in.adminGet("/debug/breakers"); code != 200 || !strings.Contains(body, `"breakers":[]`) {
		t.Fatalf("/debug/breakers: %d %s", code, body)
	}
	if !strings.Contains(in.log.String(), `"request_id":"req-123"`) {
		t.Fatal("the request id is not in the log")
	}
}
