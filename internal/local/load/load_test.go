package load

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestCheckTargetOnlyLoopback(t *testing.T) {
	for _, ok := range []string{"http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:80/", "https://127.0.0.2"} {
		if err := CheckTarget(ok); err != nil {
			t.Errorf("%s: %v", ok, err)
		}
	}
	for _, bad := range []string{"http://10.0.0.1:80", "http://example.com", "ftp://127.0.0.1", "127.0.0.1:80", "http://0.0.0.0:80", ""} {
		if err := CheckTarget(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
	if _, err := Run(context.Background(), Options{Target: "http://192.168.1.1", Rate: 1}); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("Run to a LAN address: %v", err)
	}
	for _, r := range []float64{0, -1, MaxRate + 1, math.NaN()} {
		if _, err := Run(context.Background(), Options{Target: "http://127.0.0.1:1", Rate: r}); err == nil {
			t.Errorf("rate %g accepted", r)
		}
	}
	if _, err := Run(context.Background(), Options{Target: "http://127.0.0.1:1", Rate: 1, Routes: []string{"/admin"}}); err == nil {
		t.Error("unknown route accepted")
	}
}

// A stand-in for the gateway that checks what load sends; the real
// services answer in internal/cli's local end-to-end test.
func TestRunSendsBoundedRealisticRequests(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "k" {
			http.Error(w, "no key", http.StatusUnauthorized)
			return
		}
		mu.Lock()
		seen[r.Method+" "+r.URL.Path]++
		mu.Unlock()
		if r.URL.Path == RouteOrders {
			var body struct {
				UserID string `json:"userId"`
				Items  []struct {
					ProductID string `json:"productId"`
				} `json:"items"`
			}
			if json.NewDecoder(r.Body).Decode(&body) != nil || body.UserID != "u1" || body.Items[0].ProductID != "p1" {
				http.Error(w, "bad order", http.StatusBadRequest)
				return
			}
			http.Error(w, "saga failed", http.StatusInternalServerError) // counted as an error
			return
		}
		id := map[string]string{RouteUsers: "u1", RouteProducts: "p1"}[r.URL.Path]
		_ = json.NewEncoder(w).Encode(map[string]string{"id": id})
	}))
	defer srv.Close()
	var windows []Window
	w, err := Run(context.Background(), Options{Target: srv.URL, APIKey: "k", Rate: 40, Duration: 2 * time.Second,
		Progress: func(w Window) { windows = append(windows, w) }})
	if err != nil {
		t.Fatal(err)
	}
	// A token bucket of one: at most rate x duration, plus the first.
	if w.Requests < 40 || w.Requests > 81 {
		t.Fatalf("%d requests in 2s at 40/s", w.Requests)
	}
	if w.Codes["500"] != w.Errors || w.Codes["400"] != 0 || w.Errors < w.Requests/3 {
		t.Fatalf("codes %v errors %d of %d", w.Codes, w.Errors, w.Requests)
	}
	if len(windows) == 0 || windows[0].Requests == 0 || w.P50 <= 0 {
		t.Fatalf("progress %+v, summary %+v", windows, w)
	}
	mu.Lock()
	defer mu.Unlock()
	if seen["GET "+RouteProducts] == 0 || seen["POST "+RouteUsers] < 2 || seen["POST "+RouteOrders] == 0 {
		t.Fatalf("requests seen: %v", seen)
	}
}

// A redirect is not followed (it would carry the key and the load away
// from loopback), and a name is dialled only if it resolves to loopback.
func TestRunStaysOnLoopback(t *testing.T) {
	var followed atomic.Int32
	away := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { followed.Add(1) }))
	defer away.Close()
	srv := httptest.NewServer(http.RedirectHandler(away.URL+"/steal", http.StatusTemporaryRedirect))
	defer srv.Close()
	_, err := Run(context.Background(), Options{Target: srv.URL, APIKey: "k", Rate: 10, Duration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "307") {
		t.Fatalf("setup answered with a redirect: %v", err)
	}
	if n := followed.Load(); n != 0 {
		t.Fatalf("the redirect was followed (%d requests)", n)
	}
	if _, err := loopbackClient().Get("http://192.0.2.1:80/"); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Fatalf("dial to 192.0.2.1: %v", err)
	}
}
