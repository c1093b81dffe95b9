package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/host/hosttest"
	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
)

// Keys come from a mounted Secret and are re-read when it changes, with no
// restart: within the reload interval a revoked API key is refused, and
// after a JWKS rotation the new signer's tokens are accepted and the old
// one's refused. A new file that does not load keeps the keys in use.
func TestKeysReloadWithoutARestart(t *testing.T) {
	const issuer = "https://auth.test"
	oldSigner, err := auth.NewDevSigner(issuer, "payment")
	if err != nil {
		t.Fatal(err)
	}
	newSigner, err := auth.NewDevSigner(issuer, "payment")
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour)
	admin := auth.APIKeyEntry{Name: "admin", SHA256: auth.HashAPIKey(adminKey), Roles: []string{"admin"}, Expires: exp, RatePerSecond: 1000, Burst: 1000}
	ci := auth.APIKeyEntry{Name: "ci", SHA256: auth.HashAPIKey("key-ci-0123456789"), Roles: []string{"admin"}, Expires: exp, RatePerSecond: 1000, Burst: 1000}
	dir := hosttest.SecretDir(t, map[string][]byte{"api-keys.json": hosttest.APIKeys(admin, ci), "jwks.json": oldSigner.JWKS()})
	in := start(t, map[string]string{
		"AUTH_API_KEYS_FILE": filepath.Join(dir, "api-keys.json"), "AUTH_JWKS_FILE": filepath.Join(dir, "jwks.json"),
		"AUTH_JWT_ISSUER": issuer, "KEYS_RELOAD_INTERVAL": "200ms",
	})
	bearer := func(s *auth.Signer) context.Context {
		tok, err := s.Token("alice", []string{"admin"}, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+tok)
	}
	call := func(ctx context.Context) codes.Code {
		_, err := in.client.ListPayments(ctx, &paymentv1.ListPaymentsRequest{PageSize: 1})
		return status.Code(err)
	}
	callers := []struct {
		name       string
		ctx        context.Context
		now, later codes.Code
	}{
		{"admin key", as(adminKey), codes.OK, codes.OK},
		{"revoked key", as("key-ci-0123456789"), codes.OK, codes.Unauthenticated},
		{"old signer's token", bearer(oldSigner), codes.OK, codes.Unauthenticated},
		{"new signer's token", bearer(newSigner), codes.Unauthenticated, codes.OK},
	}
	for _, c := range callers {
		if got := call(c.ctx); got != c.now {
			t.Fatalf("before the change, %s: %v, want %v", c.name, got, c.now)
		}
	}

	hosttest.UpdateSecret(t, dir, map[string][]byte{"api-keys.json": hosttest.APIKeys(admin), "jwks.json": newSigner.JWKS()})
	deadline := time.Now().Add(5 * time.Second)
	for _, c := range callers {
		for got := call(c.ctx); got != c.later; got = call(c.ctx) {
			if time.Now().After(deadline) {
				t.Fatalf("5s after the change, %s: %v, want %v", c.name, got, c.later)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// A broken file is refused whole: the keys in use stay, poll after poll.
	hosttest.UpdateSecret(t, dir, map[string][]byte{"api-keys.json": []byte("{not json"), "jwks.json": []byte(`{"keys": []}`)})
	for range 5 {
		time.Sleep(200 * time.Millisecond)
		for _, c := range callers {
			if got := call(c.ctx); got != c.later {
				t.Fatalf("after a broken update, %s: %v, want %v", c.name, got, c.later)
			}
		}
	}
}
