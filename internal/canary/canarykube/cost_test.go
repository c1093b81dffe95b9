package canarykube

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/promtest"
)

// countingProxy forwards to the test API server and counts the requests,
// so a benchmark knows how many API calls msctl made.
type countingProxy struct {
	addr     string
	requests atomic.Int64
}

func startCountingProxy(b *testing.B) *countingProxy {
	b.Helper()
	target, err := url.Parse(cluster.RESTConfig().Host)
	if err != nil {
		b.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(target)
	// The test API server's certificate is its own; the proxy is loopback.
	rp.Transport = &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	p := &countingProxy{}
	// TLS, as client-go sends a bearer token only over it.
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.requests.Add(1)
		rp.ServeHTTP(w, r)
	}))
	srv.StartTLS()
	b.Cleanup(srv.Close)
	p.addr = srv.URL
	return p
}

// kubeconfig points at the proxy with the test cluster's admin token.
func (p *countingProxy) kubeconfig(b *testing.B) string {
	b.Helper()
	path := filepath.Join(b.TempDir(), "kubeconfig")
	cfg := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: %q, insecure-skip-tls-verify: true}}]
users: [{name: admin, user: {token: %q}}]
contexts: [{name: c, context: {cluster: c, user: admin}}]
current-context: c
`, p.addr, cluster.RESTConfig().BearerToken)
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkCanaryRun measures what the driver costs while it runs a whole
// healthy canary of two steps with the msctl binary: API requests per
// step, CPU time and peak RSS of the msctl process.
func BenchmarkCanaryRun(b *testing.B) {
	e := newEnv(b, steps(50, 100))
	e.canaryTraffic(promtest.Traffic{RPS: 20, P50MS: 20, P99MS: 80})
	project := e.projectFile()
	proxy := startCountingProxy(b)
	kubeconfig := proxy.kubeconfig(b)
	var cpu time.Duration
	var rss int64
	var requests int64
	for i := 0; b.Loop(); i++ {
		before := proxy.requests.Load()
		cmd := e.msctl(project, "canary", "run", "user", "--tag", fmt.Sprintf("b%d", i), "-q")
		cmd.Args = append(cmd.Args, "--kubeconfig", kubeconfig)
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("canary run: %v\n%s", err, out)
		}
		requests += proxy.requests.Load() - before
		ps := cmd.ProcessState
		cpu += ps.UserTime() + ps.SystemTime()
		if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
			rss = max(rss, ru.Maxrss*1024)
		}
	}
	steps := float64(len(e.d.Project.Canary.Steps) * b.N)
	b.ReportMetric(float64(requests)/steps, "apireq/step")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/canary")
	b.ReportMetric(float64(rss)/(1<<20), "peak-rss-MiB")
}
