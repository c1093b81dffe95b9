package auth

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// limitsFixture is an Authenticator with one good API key ("good"), a dev
// signer for JWTs, and l as its limits, logging to logs.
type limitsFixture struct {
	a      *Authenticator
	signer *Signer
	logs   *lockedBuffer
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newLimitsFixture(t *testing.T, l Limits) *limitsFixture {
	t.Helper()
	keys, err := NewAPIKeys([]APIKeyEntry{{Name: "good", SHA256: HashAPIKey("good"), Roles: []string{"admin"},
		Expires: time.Now().Add(time.Hour), RatePerSecond: 1000, Burst: 1000}}, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	signer, v := devSigner(t)
	logs := &lockedBuffer{}
	pol := Policy{Roles: map[string][]Permission{"admin": {"read"}}, Methods: map[string]Permission{"/svc/Get": "read"},
		Public: map[string]bool{"/svc/Ping": true}}
	return &limitsFixture{a: New(pol, v, keys, slog.New(slog.NewTextHandler(logs, nil))).WithLimits(l), signer: signer, logs: logs}
}

// from is a call context from addr (a gRPC peer) carrying md.
func from(addr string, kv ...string) context.Context {
	ctx := metadata.NewIncomingContext(context.Background(), metadata.Pairs(kv...))
	return peer.NewContext(ctx, &peer.Peer{Addr: &net.TCPAddr{IP: net.ParseIP(addr), Port: 40000}})
}

func (f *limitsFixture) code(ctx context.Context) codes.Code {
	_, err := f.a.Authenticate(ctx, "/svc/Get")
	return status.Code(err)
}

// An address that fails too often has its bad credentials refused with
// ResourceExhausted until its budget refills; its good credentials still
// pass (callers behind one NAT or sidecar must not lock each other out),
// and other addresses are not affected. The address is the mesh edge's
// when the call came through the pod's sidecar (loopback), else the
// peer's, else (the in-process gateway) x-forwarded-for's last hop.
func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	f := newLimitsFixture(t, Limits{FailuresPerSecond: 0.001, FailureBurst: 3})
	steps := []struct {
		name string
		ctx  context.Context
		want codes.Code
	}{
		{"1st bad key", from("10.0.0.1", APIKeyKey, "guess-1"), codes.Unauthenticated},
		{"2nd: no credentials", from("10.0.0.1"), codes.Unauthenticated},
		{"3rd: bad token", from("10.0.0.1", AuthorizationKey, "Bearer x.y.z"), codes.Unauthenticated},
		{"4th bad key", from("10.0.0.1", APIKeyKey, "guess-3"), codes.ResourceExhausted},
		{"a good key from the same address", from("10.0.0.1", APIKeyKey, "good"), codes.OK},
		{"another address", from("10.0.0.2", APIKeyKey, "good"), codes.OK},
		{"another address, bad key", from("10.0.0.2", APIKeyKey, "guess-2"), codes.Unauthenticated},
		{"via the sidecar, the edge's address wins over the peer",
			from("127.0.0.6", APIKeyKey, "guess-4", "x-envoy-external-address", "10.0.0.1"), codes.ResourceExhausted},
		{"a direct caller naming the edge's address is held to its own",
			from("10.0.0.2", APIKeyKey, "guess-5", "x-envoy-external-address", "10.0.0.1"), codes.Unauthenticated},
		{"gateway call from the blocked address",
			metadata.NewIncomingContext(context.Background(), metadata.Pairs(APIKeyKey, "guess-6", "x-forwarded-for", "203.0.113.9, 10.0.0.1")), codes.ResourceExhausted},
		{"gateway call from the blocked address, good key",
			metadata.NewIncomingContext(context.Background(), metadata.Pairs(APIKeyKey, "good", "x-forwarded-for", "203.0.113.9, 10.0.0.1")), codes.OK},
		{"gateway call from another", metadata.NewIncomingContext(context.Background(), metadata.Pairs(APIKeyKey, "guess-7", "x-forwarded-for", "10.0.0.1, 10.0.0.3")), codes.Unauthenticated},
	}
	for _, s := range steps {
		if got := f.code(s.ctx); got != s.want {
			t.Fatalf("%s: %v, want %v", s.name, got, s.want)
		}
	}
	if _, err := f.a.Authenticate(from("10.0.0.1"), "/svc/Ping"); err != nil {
		t.Errorf("a public method is limited: %v", err)
	}
}

// A caller reaching the port directly cannot dodge its failure budget by
// naming a new edge address on every call, and callers that never fail
// are not tracked at all.
func TestFailureLimitIsNotDodgedNorGrownByGoodCallers(t *testing.T) {
	f := newLimitsFixture(t, Limits{FailuresPerSecond: 0.001, FailureBurst: 3})
	for i := range 4 {
		want := codes.Unauthenticated
		if i == 3 {
			want = codes.ResourceExhausted
		}
		ctx := from("10.0.0.9", APIKeyKey, "guess", "x-envoy-external-address", fmt.Sprintf("198.51.100.%d", i))
		if got := f.code(ctx); got != want {
			t.Fatalf("call %d with a made-up edge address: %v, want %v", i+1, got, want)
		}
	}
	for i := range 1000 {
		if got := f.code(from(fmt.Sprintf("10.1.%d.%d", i/256, i%256), APIKeyKey, "good")); got != codes.OK {
			t.Fatalf("good call %d: %v", i, got)
		}
	}
	if n := len(f.a.failures.byKey); n != 1 {
		t.Errorf("the failure limiter tracks %d addresses, want 1 (the failing one)", n)
	}
}

// A JWT subject gets a budget of its own, as an API key does.
func TestJWTSubjectsAreLimited(t *testing.T) {
	f := newLimitsFixture(t, Limits{SubjectPerSecond: 0.001, SubjectBurst: 2})
	bearer := func(sub string) context.Context {
		tok, err := f.signer.Token(sub, []string{"admin"}, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		return from("10.0.0.1", AuthorizationKey, "Bearer "+tok)
	}
	for i, want := range []codes.Code{codes.OK, codes.OK, codes.ResourceExhausted} {
		if got := f.code(bearer("alice")); got != want {
			t.Fatalf("alice's call %d: %v, want %v", i+1, got, want)
		}
	}
	if got := f.code(bearer("bob")); got != codes.OK {
		t.Errorf("bob is limited by alice's calls: %v", got)
	}
	if got := f.code(from("10.0.0.1", APIKeyKey, "good")); got != codes.OK {
		t.Errorf("an API key is limited by a subject's budget: %v", got)
	}
}

// The process's limit holds for every caller together, and is checked
// before any credential.
func TestProcessLimit(t *testing.T) {
	f := newLimitsFixture(t, Limits{GlobalPerSecond: 0.001, GlobalBurst: 2})
	for i, c := range []struct {
		ctx  context.Context
		want codes.Code
	}{
		{from("10.0.0.1", APIKeyKey, "good"), codes.OK},
		{from("10.0.0.2", APIKeyKey, "bad"), codes.Unauthenticated},
		{from("10.0.0.3", APIKeyKey, "good"), codes.ResourceExhausted},
	} {
		if got := f.code(c.ctx); got != c.want {
			t.Fatalf("call %d: %v, want %v", i+1, got, c.want)
		}
	}
	if _, err := f.a.Authenticate(from("10.0.0.3"), "/grpc.health.v1.Health/Check"); err != nil {
		t.Errorf("health checks are limited: %v", err)
	}
}

// A burst of refusals is one log line, not one per refusal; the next line
// of the same kind, a second later, says how many were left out.
func TestRejectionLogIsSampled(t *testing.T) {
	f := newLimitsFixture(t, Limits{})
	for i := range 100 {
		if got := f.code(from("10.0.0.1", APIKeyKey, "guess")); got != codes.Unauthenticated {
			t.Fatalf("call %d: %v", i, got)
		}
	}
	if n := strings.Count(f.logs.String(), "auth rejected"); n != 1 {
		t.Fatalf("100 refusals wrote %d lines:\n%s", n, f.logs.String())
	}
	time.Sleep(sampleEvery + 50*time.Millisecond)
	f.code(from("10.0.0.1", APIKeyKey, "guess"))
	lines := strings.Split(strings.TrimSpace(f.logs.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[1], "not_logged_since_last=99") {
		t.Errorf("the second line does not count the 99 left out:\n%s", f.logs.String())
	}
	if strings.Contains(f.logs.String(), "guess") {
		t.Error("a credential reached the log")
	}
}
