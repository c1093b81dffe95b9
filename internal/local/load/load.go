// Package load sends built-in traffic through the local gateway: requests
// that succeed against the bundled services (create users, list products,
// place orders), at a bounded rate, to loopback addresses only. It is
// Flagger's load tester built in: local canaries get traffic to analyse.
//
// It never prints; the caller sees progress through Options.Progress.
package load

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/time/rate"
)

// MaxRate bounds the request rate: enough to analyse a canary, too little
// to be mistaken for a benchmark or to starve a laptop.
const MaxRate = 1000

// The routes load knows how to call.
const (
	RouteUsers    = "/api/v1/users"
	RouteProducts = "/api/v1/products"
	RouteOrders   = "/api/v1/orders"
)

// Routes are the routes load calls by default, in the order of their share
// of requests.
var Routes = []string{RouteOrders, RouteProducts, RouteUsers}

// Options say where, how fast and for how long.
type Options struct {
	// Target is the gateway's base URL; it must be a loopback address.
	Target string
	// APIKey is sent as X-API-Key.
	APIKey string
	// Rate is requests per second, above 0 and at most MaxRate.
	Rate float64
	// Duration ends the load; 0 runs until ctx ends.
	Duration time.Duration
	// Routes limit the requests to these routes (default Routes).
	Routes []string
	// Progress hears the last second's numbers, every second.
	Progress func(Window)
	// Client sends the requests; nil uses a client with a 10s timeout.
	Client *http.Client
}

// Window is what load saw over a span of time.
type Window struct {
	Elapsed time.Duration `json:"-"`
	// Seconds is Elapsed for JSON readers.
	Seconds  float64 `json:"seconds"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	// Rate is requests per second over the window.
	Rate float64 `json:"rate"`
	// ErrorRate is the share of requests that failed, 0 to 1.
	ErrorRate float64 `json:"errorRate"`
	// Latencies in milliseconds.
	P50 float64 `json:"p50Ms"`
	P95 float64 `json:"p95Ms"`
	P99 float64 `json:"p99Ms"`
	// Codes counts responses by status code ("error" for no response).
	Codes map[string]int `json:"codes"`
}

// CheckTarget refuses a URL that is not http(s) to a loopback address: the
// built-in load never leaves the machine.
func CheckTarget(target string) error {
	u, err := url.Parse(target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("load target %q: want an http URL such as http://127.0.0.1:8080", target)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("load target %s: only loopback addresses (127.0.0.1, ::1, localhost) are allowed", target)
	}
	return nil
}

// loopbackClient keeps load on the machine after CheckTarget too: it
// connects only to loopback addresses, whatever a name such as localhost
// resolves to, and follows no redirect, which would carry the API key and
// the load elsewhere.
func loopbackClient() *http.Client {
	dialer := &net.Dialer{Timeout: 3 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("load: %s is not a loopback address", address)
		}
		return nil
	}}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext, tr.Proxy = dialer.DialContext, nil
	tr.MaxIdleConns, tr.MaxIdleConnsPerHost = MaxRate, MaxRate
	return &http.Client{
		Timeout:       10 * time.Second,
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// CheckRoutes refuses a route load does not know.
func CheckRoutes(routes []string) error {
	for _, r := range routes {
		if !slices.Contains(Routes, r) {
			return fmt.Errorf("route %q: load knows %s", r, strings.Join(Routes, ", "))
		}
	}
	return nil
}

// Run sends load until ctx ends or Duration passes, and returns the whole
// run's numbers. It fails at once if the target refuses the setup requests
// (a user and a product to order).
func Run(ctx context.Context, o Options) (Window, error) {
	if err := CheckTarget(o.Target); err != nil {
		return Window{}, err
	}
	if !(o.Rate > 0 && o.Rate <= MaxRate) { // NaN too
		return Window{}, fmt.Errorf("load rate %g: want above 0 and at most %d requests a second", o.Rate, MaxRate)
	}
	if err := CheckRoutes(o.Routes); err != nil {
		return Window{}, err
	}
	routes := o.Routes
	if len(routes) == 0 {
		routes = Routes
	}
	c := &caller{o: o, base: strings.TrimSuffix(o.Target, "/"), http: o.Client}
	if c.http == nil {
		c.http = loopbackClient()
	}
	if slices.Contains(routes, RouteOrders) {
		if err := c.setup(ctx); err != nil {
			return Window{}, err
		}
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	total, window := newRecorder(), newRecorder()
	start := time.Now()
	if o.Progress != nil {
		// Stopped and waited for before Run returns: no report after it.
		stop, stopped := make(chan struct{}), make(chan struct{})
		defer func() { close(stop); <-stopped }()
		go func() {
			defer close(stopped)
			t := time.NewTicker(time.Second)
			defer t.Stop()
			for {
				select {
				case <-stop:
					return
				case <-t.C:
					o.Progress(window.take(time.Since(start), time.Second))
				}
			}
		}()
	}
	lim := rate.NewLimiter(rate.Limit(o.Rate), 1)
	// In flight at most a second's worth, so a stalled target is not
	// answered with an unbounded pile of goroutines.
	sem := make(chan struct{}, max(1, int(o.Rate)))
	var wg sync.WaitGroup
	for i := 0; ; i++ {
		if lim.Wait(ctx) != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(route string) {
			defer wg.Done()
			defer func() { <-sem }()
			t0 := time.Now()
			code := c.call(context.WithoutCancel(ctx), route)
			d := time.Since(t0)
			total.add(code, d)
			window.add(code, d)
		}(pick(routes, i))
	}
	wg.Wait()
	elapsed := time.Since(start)
	return total.take(elapsed, elapsed), nil
}

// pick spreads requests over the routes: orders half of them, the others
// sharing the rest, so every service sees traffic (order calls user,
// inventory and payment).
func pick(routes []string, i int) string {
	if len(routes) == 1 {
		return routes[0]
	}
	if slices.Contains(routes, RouteOrders) && i%2 == 0 {
		return RouteOrders
	}
	others := slices.DeleteFunc(slices.Clone(routes), func(r string) bool { return r == RouteOrders })
	return others[(i/2)%len(others)]
}

// caller sends the requests, with a user and a product to order.
type caller struct {
	o               Options
	base            string
	http            *http.Client
	userID, product string
}

func (c *caller) setup(ctx context.Context) error {
	var u, p struct {
		ID string `json:"id"`
	}
	if code, err := c.post(ctx, RouteUsers, newUser(), &u); err != nil {
		return fmt.Errorf("load: creating a user at %s%s: %s", c.base, RouteUsers, describe(code, err))
	}
	product := map[string]any{"sku": "LOAD-" + token(), "name": "Load test item", "priceCents": 100, "initialStock": 1_000_000_000}
	if code, err := c.post(ctx, RouteProducts, product, &p); err != nil {
		return fmt.Errorf("load: creating a product at %s%s: %s", c.base, RouteProducts, describe(code, err))
	}
	c.userID, c.product = u.ID, p.ID
	return nil
}

func describe(code int, err error) string {
	if code == 0 {
		return err.Error()
	}
	return fmt.Sprintf("status %d: %v", code, err)
}

// call sends one request of route and returns its status code, 0 for no
// response.
func (c *caller) call(ctx context.Context, route string) int {
	var code int
	switch route {
	case RouteUsers:
		code, _ = c.post(ctx, RouteUsers, newUser(), nil)
	case RouteProducts:
		code, _ = c.do(ctx, http.MethodGet, RouteProducts+"?pageSize=10", nil, nil)
	case RouteOrders:
		code, _ = c.post(ctx, RouteOrders, map[string]any{
			"userId": c.userID, "paymentMethodToken": "tok_visa", "idempotencyKey": token(),
			"items": []map[string]any{{"productId": c.product, "quantity": 1}},
		}, nil)
	}
	return code
}

func (c *caller) post(ctx context.Context, path string, body, out any) (int, error) {
	return c.do(ctx, http.MethodPost, path, body, out)
}

func (c *caller) do(ctx context.Context, method, path string, body, out any) (int, error) {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, err
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	req.Header.Set("X-API-Key", c.o.APIKey)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 300 {
		return resp.StatusCode, errors.New(strings.TrimSpace(string(b)))
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return resp.StatusCode, err
		}
	}
	return resp.StatusCode, nil
}

func newUser() map[string]any {
	t := token()
	return map[string]any{"email": "load-" + t + "@example.com", "fullName": "Load " + t}
}

func token() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// recorder gathers responses; take reads and resets it.
type recorder struct {
	mu        sync.Mutex
	codes     map[string]int
	latencies []float64
	seen      int
	errors    int
}

// maxLatencies bounds the latencies a recorder keeps.
const maxLatencies = 200_000

func newRecorder() *recorder { return &recorder{codes: map[string]int{}} }

func (r *recorder) add(code int, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := "error"
	if code != 0 {
		key = fmt.Sprint(code)
	}
	r.codes[key]++
	if code == 0 || code >= 500 {
		r.errors++
	}
	ms := float64(d.Microseconds()) / 1000
	r.seen++
	if len(r.latencies) < maxLatencies {
		r.latencies = append(r.latencies, ms)
	} else if j := mrand.IntN(r.seen); j < maxLatencies {
		r.latencies[j] = ms // a uniform sample of all the latencies seen
	}
}

func (r *recorder) take(elapsed, span time.Duration) Window {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := Window{Elapsed: elapsed.Round(time.Millisecond), Seconds: elapsed.Round(time.Millisecond).Seconds(), Codes: r.codes, Errors: r.errors}
	for _, n := range r.codes {
		w.Requests += n
	}
	if span > 0 {
		w.Rate = float64(w.Requests) / span.Seconds()
	}
	if w.Requests > 0 {
		w.ErrorRate = float64(w.Errors) / float64(w.Requests)
	}
	sort.Float64s(r.latencies)
	w.P50, w.P95, w.P99 = quantile(r.latencies, 0.5), quantile(r.latencies, 0.95), quantile(r.latencies, 0.99)
	r.codes, r.latencies, r.seen, r.errors = map[string]int{}, r.latencies[:0], 0, 0
	return w
}

func quantile(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(q*float64(len(sorted))))]
}
