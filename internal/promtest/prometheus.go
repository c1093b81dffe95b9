// Package promtest runs the monitoring half of msctl's canary tests on real
// parts: a real Prometheus server (Debian's prometheus package), started on a
// free loopback port with a 1 s scrape interval, and a test exporter that
// serves Istio's standard request metrics for workloads whose request rates,
// error ratios and latencies the test sets over time.
//
// It owns the server process, its temporary files and the exporter's
// listener and goroutine, and must leave none of them behind when a test
// ends. It is for tests only; msctl itself never imports it.
package promtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/logtail"
	"github.com/msctl/msctl/internal/testenv"
	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

const (
	// jobName is the job label of every target the server scrapes.
	jobName = "promtest"

	// startTimeout bounds a start: the server answering /-/ready and a first
	// successful scrape of every target. A start takes about a second; the
	// rest is room for a loaded CI machine.
	startTimeout = 60 * time.Second
	// stopGrace is how long Stop waits after SIGTERM before SIGKILL.
	stopGrace = 10 * time.Second
	// waitScrapeTimeout bounds WaitScrape: a scrape is due every second.
	waitScrapeTimeout = 15 * time.Second
	pollInterval      = 100 * time.Millisecond

	// scrapeTimeMargin covers Prometheus moving a scrape's timestamp by up to
	// 2 ms to align it with the scrape interval (2.38 and later).
	scrapeTimeMargin = 5 * time.Millisecond
)

// errPortTaken is returned by a start that lost its port to another process
// between picking the port and binding it.
var errPortTaken = errors.New("port already in use")

// Prometheus is a prometheus server run by one test. Its methods other than
// WaitScrape report failures on the test that started it, so call them from
// that test's goroutine.
type Prometheus struct {
	t       testing.TB
	bin     string
	dir     string // the config, data/ and prometheus.log
	targets []string
	addr    string // 127.0.0.1:PORT, kept across Stop and Start
	api     promv1.API

	mu     sync.Mutex
	server *serverProcess // nil while stopped
}

// serverProcess is one run of the prometheus binary.
type serverProcess struct {
	cmd    *exec.Cmd
	exited chan struct{} // closed once the process has been waited for
	err    error         // the exit status; read it after exited is closed
}

// StartPrometheus starts a prometheus server that scrapes the given targets
// (host:port, serving /metrics) every second, and returns once it is ready
// and has scraped every target successfully. The server is stopped when the
// test ends; if the test failed, the end of the server's log is shown.
//
// The test fails, never skips, when the prometheus binary is missing; the
// fast tier (testenv) skips it.
func StartPrometheus(t testing.TB, targets ...string) *Prometheus {
	t.Helper()
	testenv.Integration(t, "a Prometheus server")
	bin, err := findPrometheus()
	if err != nil {
		t.Fatalf("promtest: %v", err)
	}
	for _, target := range targets {
		if _, _, err := net.SplitHostPort(target); err != nil {
			t.Fatalf("promtest: target %q is not host:port: %v", target, err)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), scrapeConfig(targets), 0o644); err != nil {
		t.Fatalf("promtest: %v", err)
	}
	p := &Prometheus{t: t, bin: bin, dir: dir, targets: targets}
	// Registered after TempDir, so the server stops before its dir goes.
	t.Cleanup(p.cleanup)

	p.mu.Lock()
	defer p.mu.Unlock()
	for attempt := 1; ; attempt++ {
		port, err := freePort()
		if err != nil {
			t.Fatalf("promtest: %v", err)
		}
		if err := p.setAddr(net.JoinHostPort("127.0.0.1", strconv.Itoa(port))); err != nil {
			t.Fatalf("promtest: %v", err)
		}
		err = p.start()
		if err == nil {
			return p
		}
		if !errors.Is(err, errPortTaken) || attempt == 3 {
			t.Fatalf("promtest: %v", err)
		}
	}
}

// findPrometheus returns the path of the prometheus binary, or an error that
// says how to install it.
func findPrometheus() (string, error) {
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		return "", fmt.Errorf("the canary tests need a real Prometheus server, and %v; "+
			"install Debian's prometheus package with `make deps` (hack/deps.sh), which keeps its daemon from starting", err)
	}
	return bin, nil
}

// scrapeConfig is the server's configuration: every target scraped and
// every rule evaluated once a second.
func scrapeConfig(targets []string) []byte {
	var b strings.Builder
	b.WriteString("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n")
	fmt.Fprintf(&b, "scrape_configs:\n  - job_name: %s\n    static_configs:\n      - targets: [", jobName)
	for i, target := range targets {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Quote(target)) // a JSON string is a YAML string
	}
	b.WriteString("]\n")
	return []byte(b.String())
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (p *Prometheus) setAddr(addr string) error {
	client, err := api.NewClient(api.Config{Address: "http://" + addr})
	if err != nil {
		return fmt.Errorf("client for %s: %w", addr, err)
	}
	p.addr = addr
	p.api = promv1.NewAPI(client)
	return nil
}

// Addr is the server's base URL, http://127.0.0.1:PORT; it stays the same
// across Stop and Start.
func (p *Prometheus) Addr() string { return "http://" + p.addr }

// API is a client of the server's HTTP API.
func (p *Prometheus) API() promv1.API { return p.api }

// Stop stops the server: SIGTERM, then SIGKILL if it has not exited after
// 10 s. Queries then fail with a refused connection until Start. Stopping a
// stopped server does nothing.
func (p *Prometheus) Stop() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server == nil {
		return
	}
	s := p.server
	p.server = nil
	if err := s.stop(); err != nil {
		p.t.Errorf("promtest: stop prometheus on %s: %v\n%s", p.addr, err, p.logTail())
	}
}

// Start starts a stopped server again on the same port and data directory,
// so the samples scraped before Stop are still there, and returns once it is
// ready and has scraped every target. It fails the test if the server is
// running or if another process took the port meanwhile.
func (p *Prometheus) Start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		p.t.Fatalf("promtest: Start: prometheus is already running on %s", p.addr)
	}
	if err := p.start(); err != nil {
		p.t.Fatalf("promtest: restart: %v", err)
	}
}

// start runs the binary and waits until it is ready and every target is up;
// on failure the process is gone. The caller holds mu.
func (p *Prometheus) start() error {
	logf, err := os.OpenFile(p.logPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("start prometheus: %w", err)
	}
	// The log is appended to across restarts; this line marks each start.
	fmt.Fprintf(logf, "=== promtest: %s on %s\n", p.bin, p.addr)
	cmd := exec.Command(p.bin,
		"--config.file="+filepath.Join(p.dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(p.dir, "data"),
		"--web.listen-address="+p.addr,
	)
	cmd.Dir = p.dir
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = serverSysProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start prometheus: %w", err)
	}
	s := &serverProcess{cmd: cmd, exited: make(chan struct{})}
	go func() {
		s.err = cmd.Wait()
		_ = logf.Close()
		close(s.exited)
	}()

	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	err = s.until(ctx, p.checkReady)
	if err == nil {
		err = s.until(ctx, p.checkTargetsUp)
	}
	if err != nil {
		s.kill()
		tail := p.logTail()
		if strings.Contains(tail, "address already in use") {
			return fmt.Errorf("prometheus on %s: %w\n%s", p.addr, errPortTaken, tail)
		}
		return fmt.Errorf("prometheus on %s: %v\n%s", p.addr, err, tail)
	}
	p.server = s
	return nil
}

// until calls check every pollInterval until it reports done, the server
// exits or ctx ends; the error then says what check saw last.
func (s *serverProcess) until(ctx context.Context, check func(context.Context) (done bool, status string)) error {
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		done, status := check(ctx)
		if done {
			return nil
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited (%v) while %s", s.err, status)
		case <-ctx.Done():
			return fmt.Errorf("gave up after %s: %s", startTimeout, status)
		case <-tick.C:
		}
	}
}

func (p *Prometheus) checkReady(ctx context.Context) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Addr()+"/-/ready", nil)
	if err != nil {
		return false, err.Error()
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, "waiting for /-/ready: " + err.Error()
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, "waiting for /-/ready: " + resp.Status
	}
	return true, ""
}

func (p *Prometheus) checkTargetsUp(ctx context.Context) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	res, err := p.api.Targets(ctx)
	if err != nil {
		return false, "waiting for the targets: " + err.Error()
	}
	health := make(map[string]promv1.ActiveTarget, len(res.Active))
	for _, at := range res.Active {
		health[string(at.Labels[model.InstanceLabel])] = at
	}
	for _, target := range p.targets {
		at, ok := health[target]
		switch {
		case !ok:
			return false, fmt.Sprintf("waiting for target %s to be discovered", target)
		case at.Health != promv1.HealthGood:
			return false, fmt.Sprintf("waiting for target %s: health %q, last error %q", target, at.Health, at.LastError)
		}
	}
	return true, ""
}

// stop sends SIGTERM to the server's process group and waits for it to
// exit, sending SIGKILL after stopGrace. It reports a server that had exited
// on its own, did not stop in time or exited with an error.
func (s *serverProcess) stop() error {
	select {
	case <-s.exited:
		return fmt.Errorf("it had exited on its own: %v", s.err)
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(stopGrace):
		s.kill()
		return fmt.Errorf("still running %s after SIGTERM; killed", stopGrace)
	}
	if s.err != nil {
		return fmt.Errorf("exit after SIGTERM: %v", s.err)
	}
	return nil
}

// kill kills the server's process group and waits for the server to exit.
func (s *serverProcess) kill() {
	select {
	case <-s.exited:
		return // its pid, and so its group's id, may belong to another process by now
	default:
	}
	// Setpgid made the server its group's leader, so its pid is the group's id.
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

func (p *Prometheus) cleanup() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.server != nil {
		s := p.server
		p.server = nil
		if err := s.stop(); err != nil {
			p.t.Errorf("promtest: stop prometheus on %s: %v\n%s", p.addr, err, p.logTail())
			return
		}
	}
	if p.t.Failed() {
		p.t.Logf("promtest: prometheus on %s\n%s", p.addr, p.logTail())
	}
}

// WaitScrape returns once the server has stored a successful scrape of every
// target that began after the call, so that everything the targets counted
// before the call is visible to queries. It fails t when a scrape fails or
// none comes within 15 s. Any test's goroutine may call it.
func (p *Prometheus) WaitScrape(t testing.TB) {
	t.Helper()
	if len(p.targets) == 0 {
		return
	}
	// `up` is committed with the scrape's samples and stamped with the
	// scrape's start, so a newer `up` means a newer scrape is queryable.
	after := time.Now().Add(scrapeTimeMargin)
	ctx, cancel := context.WithTimeout(context.Background(), waitScrapeTimeout)
	defer cancel()
	selector := fmt.Sprintf("up{job=%q}", jobName)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		status, err := p.scrapedSince(ctx, selector, after)
		if err != nil {
			t.Fatalf("promtest: WaitScrape: %v", err)
		}
		if status == "" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("promtest: WaitScrape: no new scrape of every target within %s: %s", waitScrapeTimeout, status)
		case <-tick.C:
		}
	}
}

// scrapedSince reports what is still awaited ("" when nothing is) or an
// error when the server cannot be queried or a target's scrape failed.
func (p *Prometheus) scrapedSince(ctx context.Context, selector string, after time.Time) (string, error) {
	stamps, err := p.instantByInstance(ctx, "timestamp("+selector+")")
	if err != nil {
		return "", err
	}
	for _, target := range p.targets {
		ts, ok := stamps[target]
		if !ok || time.UnixMilli(int64(math.Round(ts*1000))).Before(after) {
			return fmt.Sprintf("target %s last scraped before the call", target), nil
		}
	}
	up, err := p.instantByInstance(ctx, selector)
	if err != nil {
		return "", err
	}
	for _, target := range p.targets {
		if up[target] != 1 {
			return "", fmt.Errorf("the last scrape of target %s failed (up=%v)", target, up[target])
		}
	}
	return "", nil
}

// instantByInstance runs an instant query and returns its values by the
// instance label.
func (p *Prometheus) instantByInstance(ctx context.Context, query string) (map[string]float64, error) {
	v, _, _, err := p.api.Query(ctx, query, time.Now())
	if err != nil {
		return nil, fmt.Errorf("query %s at %s: %w", query, p.Addr(), err)
	}
	vec, ok := v.(model.Vector)
	if !ok {
		return nil, fmt.Errorf("query %s: got a %s, want a vector", query, v.Type())
	}
	out := make(map[string]float64, len(vec))
	for _, s := range vec {
		out[string(s.Metric[model.InstanceLabel])] = float64(s.Value)
	}
	return out, nil
}

func (p *Prometheus) logPath() string { return filepath.Join(p.dir, "prometheus.log") }

// logTail returns the last lines of the server's log for failure messages.
func (p *Prometheus) logTail() string { return logtail.Of(p.logPath()) }
