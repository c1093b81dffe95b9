package idempotency

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMiddlewareMakesUpAKeyOnlyForAPostWithout(t *testing.T) {
	cases := []struct {
		name, method, sent, forged string
		wantGenerated              bool
	}{
		{"POST without a key", http.MethodPost, "", "", true},
		{"POST with a key", http.MethodPost, "k-1", "", false},
		{"GET", http.MethodGet, "", "", false},
		{"a caller's own GeneratedHeader is dropped", http.MethodGet, "", "forged", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got *http.Request
			h := Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got = r }))
			r := httptest.NewRequest(tc.method, "/api/v1/orders", nil)
			if tc.sent != "" {
				r.Header.Set(Header, tc.sent)
			}
			if tc.forged != "" {
				r.Header.Set(GeneratedHeader, tc.forged)
			}
			h.ServeHTTP(httptest.NewRecorder(), r)
			generated := got.Header.Get(GeneratedHeader)
			if (generated != "") != tc.wantGenerated {
				t.Fatalf("GeneratedHeader %q, want one made up: %v", generated, tc.wantGenerated)
			}
			if got.Header.Get(Header) != tc.sent {
				t.Fatalf("Idempotency-Key changed to %q", got.Header.Get(Header))
			}
		})
	}
	if a, b := New(), New(); a == b {
		t.Fatal("two keys made up alike")
	}
}
