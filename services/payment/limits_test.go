package main

import (
	"net/http"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	paymentv1 "github.com/msctl/msctl/services/payment/api/paymentv1"
)

// Through the real ports: failed authentications over HTTP count against
// the client's address, and once its budget is spent that address's bad
// credentials are refused over HTTP (429) and gRPC (ResourceExhausted),
// while its good ones still pass (callers sharing an address, behind a
// NAT or a sidecar, must not lock each other out).
func TestFailedAuthenticationsAreLimitedPerAddress(t *testing.T) {
	in := start(t, map[string]string{"AUTH_FAILURES_PER_SECOND": "0.001", "AUTH_FAILURE_BURST": "3"})
	get := func(key string) int {
		req, err := http.NewRequest(http.MethodGet, "http://"+in.addrs.HTTP.String()+"/api/v1/payments/o-1", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Api-Key", key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(adminKey); code != http.StatusNotFound {
		t.Fatalf("a good key before any failure: %d, want 404 (no such payment)", code)
	}
	for i := range 3 {
		if code := get("guess"); code != http.StatusUnauthorized {
			t.Fatalf("bad key %d: %d, want 401", i+1, code)
		}
	}
	if code := get("guess"); code != http.StatusTooManyRequests {
		t.Errorf("a bad key after 3 failures: %d, want 429", code)
	}
	if code := get(adminKey); code != http.StatusNotFound {
		t.Errorf("a good key after 3 failures: %d, want 404 (no such payment)", code)
	}
	_, err := in.client.ListPayments(as("guess"), &paymentv1.ListPaymentsRequest{PageSize: 1})
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("a bad key over gRPC from the same address: %v, want ResourceExhausted", err)
	}
	if _, err := in.client.ListPayments(as(adminKey), &paymentv1.ListPaymentsRequest{PageSize: 1}); err != nil {
		t.Errorf("a good key over gRPC from the same address: %v", err)
	}
}
