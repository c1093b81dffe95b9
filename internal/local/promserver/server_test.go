package promserver_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/model"

	"github.com/msctl/msctl/internal/local/promserver"
)

const (
	// waitTimeout bounds every wait on scrapes, which are due every second.
	waitTimeout = 20 * time.Second
	// queryTimeout bounds a query: milliseconds, unless the machine is
	// very busy.
	queryTimeout = 30 * time.Second
)

// server is a promserver under test, serving its API on a loopback port.
type server struct {
	*promserver.Server
	url  string
	api  promv1.API
	stop func() // closes it; also done when the test ends
}

// start opens a server on dir, runs it and serves its API until stop or
// the end of the test.
func start(t testing.TB, dir string, o promserver.Options, targets ...promserver.Target) *server {
	t.Helper()
	s, err := promserver.Open(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetTargets(targets); err != nil {
		t.Fatal(err)
	}
	ran := make(chan error, 1)
	go func() { ran <- s.Run(context.Background()) }()
	hs := httptest.NewServer(s.Handler())
	stop := sync.OnceFunc(func() {
		hs.Close()
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if err := <-ran; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	t.Cleanup(stop)
	return &server{Server: s, url: hs.URL, api: client(t, hs.URL), stop: stop}
}

func client(t testing.TB, address string) promv1.API {
	t.Helper()
	c, err := api.NewClient(api.Config{Address: address})
	if err != nil {
		t.Fatal(err)
	}
	return promv1.NewAPI(c)
}

// vector runs an instant query at ts.
func (s *server) vector(t testing.TB, query string, ts time.Time) model.Vector {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), queryTimeout)
	defer cancel()
	v, _, _, err := s.api.Query(ctx, query, ts)
	if err != nil {
		t.Fatalf("query %s: %v", query, err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		t.Fatalf("query %s gave a %s, want a vector", query, v.Type())
	}
	return vec
}

// wait polls query until ok accepts its result.
func (s *server) wait(t *testing.T, query, want string, ok func(model.Vector) bool) model.Vector {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		vec := s.vector(t, query, time.Now())
		if ok(vec) {
			return vec
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s gave %v for %s, want %s", query, vec, waitTimeout, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// one accepts a vector of one sample.
func one(v model.Vector) bool { return len(v) == 1 }

// exporter serves client_golang metrics whose values the test knows at any
// time: counters growing at fixed rates, and a histogram of fixed
// observations.
type exporter struct {
	url   string
	began time.Time
	gauge *prometheus.GaugeVec
}

// Observations of demo_latency_seconds: 90 of 50 ms and 10 of 500 ms.
const fastObs, slowObs, fast, slow = 90, 10, 0.05, 0.5

func newExporter(t *testing.T) *exporter {
	t.Helper()
	// The counters began long ago, as a service's have: rate() does not
	// extrapolate a series that starts near zero beyond its start.
	e := &exporter{began: time.Now().Add(-time.Hour)}
	reg := prometheus.NewRegistry()
	for code, perSecond := range map[string]float64{"200": 10, "500": 2} {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "demo_requests_total",
			Help:        "Requests, growing at a fixed rate per code.",
			ConstLabels: prometheus.Labels{"code": code},
		}, func() float64 { return perSecond * time.Since(e.began).Seconds() }))
	}
	h := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "demo_latency_seconds",
		Help:    "Fixed observations.",
		Buckets: []float64{0.1, 0.25, 1},
	})
	for range fastObs {
		h.Observe(fast)
	}
	for range slowObs {
		h.Observe(slow)
	}
	e.gauge = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "demo_gauge", Help: "Set by the test."}, []string{"job", "team", "name"})
	reg.MustRegister(h, e.gauge)
	hs := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	t.Cleanup(hs.Close)
	e.url = hs.URL + "/metrics"
	return e
}

// deadURL is a URL where nothing listens.
func deadURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr + "/metrics"
}

func near(got, want, tolerance float64) bool { return math.Abs(got-want) <= tolerance }

// Scraped metrics answer rate, histogram_quantile and sum by through
// client_golang's API client, with the target's job, instance and labels.
func TestScrapeAndQuery(t *testing.T) {
	e := newExporter(t)
	s := start(t, t.TempDir(), promserver.Options{}, promserver.Target{
		Job: "demo", Instance: "demo-1", URL: e.url, Labels: map[string]string{"service": "user"},
	})
	// rate over 5s is exact once the series is older than the window:
	// before that it covers only the scraped part (as in Prometheus).
	s.wait(t, `count_over_time(up{job="demo"}[10s])`, "7 scrapes", func(v model.Vector) bool { return len(v) == 1 && v[0].Value >= 7 })

	now := time.Now()
	up := s.vector(t, `up`, now)
	if len(up) != 1 || up[0].Value != 1 || up[0].Metric["job"] != "demo" || up[0].Metric["instance"] != "demo-1" || up[0].Metric["service"] != "user" {
		t.Errorf("up = %v, want 1 with job demo, instance demo-1, service user", up)
	}
	checks := []struct {
		query string
		want  float64
		tol   float64
	}{
		{`sum(rate(demo_requests_total{job="demo",service="user"}[5s]))`, 12, 0.3},
		// Rank 50 of 100 lies in (0, 0.1], which holds 90: 0.1 * 50/90.
		{`histogram_quantile(0.5, sum by (le) (demo_latency_seconds_bucket))`, 0.1 * 50 / 90, 1e-9},
		// Rank 95 lies in (0.25, 1], which holds the last 10: 0.25 + 0.75 * 5/10.
		{`histogram_quantile(0.95, sum by (le) (demo_latency_seconds_bucket))`, 0.625, 1e-9},
		{`demo_latency_seconds_count`, fastObs + slowObs, 0},
		{`demo_latency_seconds_sum`, fastObs*fast + slowObs*slow, 1e-9},
	}
	for _, c := range checks {
		if vec := s.vector(t, c.query, now); len(vec) != 1 || !near(float64(vec[0].Value), c.want, c.tol) {
			t.Errorf("%s = %v, want one sample of %v ± %v", c.query, vec, c.want, c.tol)
		}
	}
	byCode := map[string]float64{}
	for _, smp := range s.vector(t, `sum by (code) (rate(demo_requests_total[5s]))`, now) {
		byCode[string(smp.Metric["code"])] = float64(smp.Value)
	}
	if len(byCode) != 2 || !near(byCode["200"], 10, 0.25) || !near(byCode["500"], 2, 0.05) {
		t.Errorf("rate by code = %v, want 200: 10 and 500: 2", byCode)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	m, _, _, err := s.api.QueryRange(ctx, `sum(demo_requests_total)`, promv1.Range{Start: now.Add(-3 * time.Second), End: now, Step: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if mat, ok := m.(model.Matrix); !ok || len(mat) != 1 || len(mat[0].Values) != 4 || mat[0].Values[3].Value <= mat[0].Values[0].Value {
		t.Errorf("range query gave %v, want one series of 4 growing points", m)
	}
	series, _, _, err := s.api.Series(ctx, []string{`demo_requests_total`}, now.Add(-time.Minute), now)
	if err != nil || len(series) != 2 {
		t.Errorf("series = %v, %v, want the 2 codes", series, err)
	}
	names, _, _, err := s.api.LabelNames(ctx, nil, time.Time{}, time.Time{})
	if err != nil || !containsAll(names, "__name__", "code", "instance", "job", "le", "service") {
		t.Errorf("label names = %v, %v", names, err)
	}
	codes, _, _, err := s.api.LabelValues(ctx, "code", []string{`demo_requests_total`}, time.Time{}, time.Time{})
	if err != nil || len(codes) != 2 || codes[0] != "200" || codes[1] != "500" {
		t.Errorf("code values = %v, %v, want [200 500]", codes, err)
	}
}

func containsAll[T ~string](have []T, want ...string) bool {
	set := map[string]bool{}
	for _, h := range have {
		set[string(h)] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// A target's own labels win over ours with HonorLabels and lose, kept as
// exported_<name>, without.
func TestHonorLabels(t *testing.T) {
	e := newExporter(t)
	e.gauge.WithLabelValues("from-target", "a", "x").Set(1)
	s := start(t, t.TempDir(), promserver.Options{},
		promserver.Target{Job: "honor", URL: e.url, Labels: map[string]string{"team": "b", "pool": "honor"}, HonorLabels: true},
		promserver.Target{Job: "own", Instance: "own-1", URL: e.url, Labels: map[string]string{"team": "b", "pool": "own"}},
	)
	vec := s.wait(t, `demo_gauge`, "2 series", func(v model.Vector) bool { return len(v) == 2 })
	got := map[model.LabelValue]model.Metric{}
	for _, smp := range vec {
		got[smp.Metric["pool"]] = smp.Metric
	}
	host := strings.TrimPrefix(strings.TrimSuffix(e.url, "/metrics"), "http://")
	want := map[model.LabelValue]model.Metric{
		"honor": {"__name__": "demo_gauge", "job": "from-target", "team": "a", "name": "x", "instance": model.LabelValue(host), "pool": "honor"},
		"own":   {"__name__": "demo_gauge", "job": "own", "exported_job": "from-target", "team": "b", "exported_team": "a", "name": "x", "instance": "own-1", "pool": "own"},
	}
	for pool, w := range want {
		if !got[pool].Equal(w) {
			t.Errorf("pool %s: got %v, want %v", pool, got[pool], w)
		}
	}
	// up is ours in both pools: it is not scraped from the target.
	up := s.vector(t, `up`, time.Now())
	if len(up) != 2 {
		t.Errorf("up = %v, want one per target", up)
	}
}

// A target that refuses connections is up 0; one removed and a series that
// vanishes get staleness markers, so they leave instant queries within
// seconds, not after the 5 minute lookback.
func TestDownTargetAndStaleness(t *testing.T) {
	e := newExporter(t)
	e.gauge.WithLabelValues("j", "t", "vanishing").Set(1)
	live := promserver.Target{Job: "live", URL: e.url}
	dead := promserver.Target{Job: "dead", URL: deadURL(t)}
	s := start(t, t.TempDir(), promserver.Options{}, live, dead)

	s.wait(t, `up{job="dead"} == 0`, "up 0 for the dead target", one)
	s.wait(t, `up{job="live"} == 1`, "up 1 for the live target", one)
	s.wait(t, `demo_gauge{name="vanishing"}`, "the gauge", one)

	e.gauge.Reset()
	s.wait(t, `demo_gauge{name="vanishing"}`, "no series once the exporter dropped it", func(v model.Vector) bool { return len(v) == 0 })

	if err := s.SetTargets([]promserver.Target{dead}); err != nil {
		t.Fatal(err)
	}
	s.wait(t, `up{job="live"}`, "no up for a removed target", func(v model.Vector) bool { return len(v) == 0 })
	if v := s.vector(t, `demo_requests_total`, time.Now()); len(v) != 0 {
		t.Errorf("series of the removed target still answer: %v", v)
	}
	// Its past is still there.
	if v := s.vector(t, `max_over_time(up{job="live"}[1m])`, time.Now()); len(v) != 1 || v[0].Value != 1 {
		t.Errorf("the removed target's history: %v", v)
	}
}

// Closed and opened again on the same dir, the server answers for the
// samples scraped before.
func TestRestartKeepsSamples(t *testing.T) {
	e := newExporter(t)
	dir := t.TempDir()
	target := promserver.Target{Job: "demo", URL: e.url}

	first := start(t, dir, promserver.Options{}, target)
	first.wait(t, `count_over_time(up[1m])`, "3 scrapes", func(v model.Vector) bool { return len(v) == 1 && v[0].Value >= 3 })
	at := time.Now()
	const query = `sum(demo_requests_total)`
	before := first.vector(t, query, at)
	first.stop()

	again := start(t, dir, promserver.Options{})
	after := again.vector(t, query, at)
	if len(before) != 1 || len(after) != 1 || before[0].Value != after[0].Value || before[0].Timestamp != after[0].Timestamp {
		t.Errorf("%s at %s: %v before the restart, %v after", query, at, before, after)
	}
}

// Environment of a child process that runs a server on a dir, scraping a
// target, until it is killed (see TestMain).
const serverEnv, serverTargetEnv = "PROMSERVER_TEST_DIR", "PROMSERVER_TEST_TARGET"

// serveUntilKilled is the child: it prints its API's URL and serves.
func serveUntilKilled(dir, target string) {
	s, err := promserver.Open(dir, promserver.Options{})
	if err == nil {
		err = s.SetTargets([]promserver.Target{{Job: "demo", URL: target}})
	}
	l, lerr := net.Listen("tcp", "127.0.0.1:0")
	if err != nil || lerr != nil {
		fmt.Fprintln(os.Stderr, err, lerr)
		os.Exit(1)
	}
	go func() { _ = http.Serve(l, s.Handler()) }()
	fmt.Printf("http://%s\n", l.Addr())
	_ = s.Run(context.Background())
}

// Killed with SIGKILL, as a crashed supervisor is, the server leaves its
// samples in the dir: the next Open answers for them.
func TestKilledServerKeepsSamples(t *testing.T) {
	e := newExporter(t)
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), serverEnv+"="+dir, serverTargetEnv+"="+e.url)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("the child server gave no URL: %v", err)
	}
	child := &server{url: strings.TrimSpace(line), api: client(t, strings.TrimSpace(line))}
	child.wait(t, `count_over_time(up[1m])`, "3 scrapes", func(v model.Vector) bool { return len(v) == 1 && v[0].Value >= 3 })
	at := time.Now()
	const query = `sum(demo_requests_total)`
	before := child.vector(t, query, at)
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()

	again := start(t, dir, promserver.Options{})
	after := again.vector(t, query, at)
	if len(before) != 1 || len(after) != 1 || before[0].Value != after[0].Value {
		t.Errorf("%s at %s: %v before the kill, %v after", query, at, before, after)
	}
}

// apiAnswer is a raw answer of the HTTP API.
type apiAnswer struct {
	code int
	body struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
	}
}

func call(t *testing.T, method, u string, form url.Values) apiAnswer {
	t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, u+"?"+form.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		if req != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	a := apiAnswer{code: resp.StatusCode}
	if err := json.Unmarshal(b, &a.body); err != nil {
		t.Fatalf("%s %s: %v in %s", method, u, err, b)
	}
	return a
}

// Bad requests get Prometheus's status codes, error types and messages;
// the sample limit and the timeout stop a query.
func TestBadQueries(t *testing.T) {
	e := newExporter(t)
	s := start(t, t.TempDir(), promserver.Options{MaxSamples: 10}, promserver.Target{Job: "demo", URL: e.url})
	s.wait(t, `count_over_time(up[1m])`, "2 scrapes", func(v model.Vector) bool { return len(v) == 1 && v[0].Value >= 2 })

	tests := []struct {
		name, path string
		form       url.Values
		code       int
		errorType  string
		message    string
	}{
		{"bad PromQL", "/api/v1/query", url.Values{"query": {"sum(rate(x[5m]"}}, 400, "bad_data", `invalid parameter "query": 1:`},
		{"bad time", "/api/v1/query", url.Values{"query": {"up"}, "time": {"yesterday"}}, 400, "bad_data", `invalid parameter "time"`},
		{"bad timeout", "/api/v1/query", url.Values{"query": {"up"}, "timeout": {"-1s"}}, 400, "bad_data", `invalid parameter "timeout"`},
		{"bad step", "/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"10"}, "step": {"0"}}, 400, "bad_data", `invalid parameter "step"`},
		{"too many points", "/api/v1/query_range", url.Values{"query": {"up"}, "start": {"0"}, "end": {"100000"}, "step": {"1"}}, 400, "bad_data", "exceeded maximum resolution"},
		{"series without match", "/api/v1/series", nil, 400, "bad_data", "no match[] parameter provided"},
		{"empty matcher", "/api/v1/labels", url.Values{"match[]": {`{job=~".*"}`}}, 400, "bad_data", "at least one non-empty matcher"},
		{"too many samples", "/api/v1/query", url.Values{"query": {`{job="demo"}[1m]`}}, 422, "execution", "query processing would load too many samples into memory"},
	}
	for _, tt := range tests {
		for _, method := range []string{http.MethodGet, http.MethodPost} {
			t.Run(tt.name+" "+method, func(t *testing.T) {
				a := call(t, method, s.url+tt.path, tt.form)
				if a.code != tt.code || a.body.Status != "error" || a.body.ErrorType != tt.errorType || !strings.Contains(a.body.Error, tt.message) {
					t.Errorf("got %d %+v, want %d %s containing %q", a.code, a.body, tt.code, tt.errorType, tt.message)
				}
			})
		}
	}

	// A query that runs for longer than its timeout: 1.8 million steps of
	// a subquery, within the default sample limit.
	slow := start(t, t.TempDir(), promserver.Options{})
	a := call(t, http.MethodPost, slow.url+"/api/v1/query", url.Values{"query": {"count_over_time(vector(1)[30m:1ms])"}, "timeout": {"0.01"}})
	if a.code != 503 || a.body.ErrorType != "timeout" || !strings.Contains(a.body.Error, "query timed out") {
		t.Errorf("slow query: got %d %+v, want 503 timeout", a.code, a.body)
	}

	// The client reports the parser's message with the error type.
	_, _, _, err := s.api.Query(context.Background(), "sum(", time.Now())
	var apiErr *promv1.Error
	if !errors.As(err, &apiErr) || apiErr.Type != promv1.ErrBadData || !strings.Contains(apiErr.Msg, "parse error") {
		t.Errorf("client error = %v, want bad_data with the parse error", err)
	}
}

// Ready and healthy as Prometheus answers them; not ready once closed.
func TestReadiness(t *testing.T) {
	s, err := promserver.Open(t.TempDir(), promserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(s.Handler())
	defer hs.Close()
	status := func(path string) int {
		resp, err := http.Get(hs.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status("/-/ready"); got != 200 {
		t.Errorf("ready: %d", got)
	}
	if got := status("/-/healthy"); got != 200 {
		t.Errorf("healthy: %d", got)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if got := status("/-/ready"); got != 503 {
		t.Errorf("ready after Close: %d, want 503", got)
	}
	if err := s.Run(context.Background()); err == nil {
		t.Error("Run after Close did not fail")
	}
}

// Bad targets are refused with the target named, and the set in use stays.
func TestBadTargets(t *testing.T) {
	s, err := promserver.Open(t.TempDir(), promserver.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	tests := []struct {
		name    string
		targets []promserver.Target
		want    string
	}{
		{"no job", []promserver.Target{{URL: "http://127.0.0.1:1/metrics"}}, "no job name"},
		{"no scheme", []promserver.Target{{Job: "a", URL: "127.0.0.1:1/metrics"}}, "want an http(s)://host:port/path URL"},
		{"bad label", []promserver.Target{{Job: "a", URL: "http://127.0.0.1:1/metrics", Labels: map[string]string{"a-b": "c"}}}, `label "a-b": not a valid label name`},
		{"reserved label", []promserver.Target{{Job: "a", URL: "http://127.0.0.1:1/metrics", Labels: map[string]string{"job": "c"}}}, `label "job": reserved`},
		{"same job and instance", []promserver.Target{{Job: "a", URL: "http://127.0.0.1:1/metrics"}, {Job: "a", URL: "http://127.0.0.1:1/other"}}, `already another target's`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.SetTargets(tt.targets)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "metrics target ") {
				t.Errorf("got %v, want an error naming the target and containing %q", err, tt.want)
			}
		})
	}
}
