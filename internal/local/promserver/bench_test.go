package promserver_test

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/msctl/msctl/internal/local/promserver"
)

var (
	benchInterval = flag.Duration("promserver.interval", 100*time.Millisecond,
		"BenchmarkScrapeMemory: scrape interval; 600 scrapes at 100ms stand for 10 minutes at 1s")
	benchScrapes = flag.Int("promserver.scrapes", 600, "BenchmarkScrapeMemory: scrapes of every target")
)

const (
	benchTargets = 5
	// Per target: 100 histograms of 12 buckets with sum and count, and 600
	// counters: 2,000 series.
	benchHistograms, benchBuckets, benchCounters = 100, 12, 600
	// exporterEnv makes the test binary an exporter process (see
	// TestMain), so that its memory is not counted as the server's.
	exporterEnv = "PROMSERVER_BENCH_EXPORTER"
)

// TestMain lets the test binary be a child process: the benchmark's
// exporters, or a server that a test kills.
func TestMain(m *testing.M) {
	switch {
	case os.Getenv(exporterEnv) != "":
		serveExporters()
	case os.Getenv(serverEnv) != "":
		serveUntilKilled(os.Getenv(serverEnv), os.Getenv(serverTargetEnv))
	default:
		os.Exit(m.Run())
	}
}

// BenchmarkScrapeMemory is the server's memory after scraping 5 targets of
// 2,000 series each for 600 scrapes: 10 minutes of the local runtime at
// its 1 s interval, simulated at 100 ms (-promserver.interval=1s runs the
// real 10 minutes). The targets are served by a child process.
//
//	go test -run '^$' -bench ScrapeMemory -benchtime 1x ./internal/local/promserver
func BenchmarkScrapeMemory(b *testing.B) {
	urls := startExporters(b)
	for b.Loop() {
		var targets []promserver.Target
		for i, u := range urls {
			targets = append(targets, promserver.Target{Job: "bench", Instance: strconv.Itoa(i), URL: u})
		}
		// The count of all samples at the end needs a higher sample limit.
		srv := start(b, b.TempDir(), promserver.Options{ScrapeInterval: *benchInterval, MaxSamples: 50_000_000}, targets...)

		// RSS at every tenth of the run, to show its growth.
		began := time.Now()
		run := time.Duration(*benchScrapes) * *benchInterval
		var growth []string
		for tenth := range 10 {
			time.Sleep(time.Until(began.Add(run * time.Duration(tenth+1) / 10)))
			growth = append(growth, fmt.Sprintf("%s: %d MiB", time.Since(began).Round(time.Second), procStatus(b, "VmRSS")/1024))
		}
		elapsed := time.Since(began)
		runtime.GC()
		rss, hwm := procStatus(b, "VmRSS"), procStatus(b, "VmHWM")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)

		series := srv.vector(b, `count({job="bench"})`, time.Now())
		// Per metric: count_over_time drops the name, and the families
		// share label sets.
		var samples float64
		for _, m := range []string{"bench_requests_total", "bench_duration_seconds_bucket", "bench_duration_seconds_sum", "bench_duration_seconds_count"} {
			samples += value(srv.vector(b, `sum(count_over_time(`+m+`[1d]))`, time.Now()))
		}
		ups := srv.vector(b, `sum(sum_over_time(up{job="bench"}[1d]))`, time.Now())
		start := time.Now()
		srv.vector(b, `sum(rate(bench_requests_total{route=~"r1.*"}[1m])) / sum(rate(bench_requests_total[1m]))`, time.Now())
		query := time.Since(start)

		b.ReportMetric(float64(rss)/1024, "RSS-MiB")
		b.ReportMetric(float64(hwm)/1024, "peakRSS-MiB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
		b.ReportMetric(value(series), "series")
		b.ReportMetric(samples, "samples")
		b.ReportMetric(value(ups), "good-scrapes")
		b.ReportMetric(query.Seconds()*1000, "query-ms")
		b.Logf("%d scrapes at %s in %s; RSS at %s", *benchScrapes, *benchInterval, elapsed.Round(time.Second), strings.Join(growth, ", "))

		srv.stop()
	}
}

func value(v model.Vector) float64 {
	if len(v) != 1 {
		return -1
	}
	return float64(v[0].Value)
}

// procStatus reads a field of /proc/self/status in KiB.
func procStatus(b *testing.B, field string) int {
	b.Helper()
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		b.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(rest), " kB"))
			if err != nil {
				b.Fatal(err)
			}
			return kb
		}
	}
	b.Fatalf("no %s in /proc/self/status", field)
	return 0
}

// startExporters runs the test binary as the exporter process and returns
// its metrics URLs, which it prints one a line.
func startExporters(b *testing.B) []string {
	b.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), exporterEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	var urls []string
	lines := bufio.NewScanner(out)
	for len(urls) < benchTargets && lines.Scan() {
		urls = append(urls, lines.Text())
	}
	if len(urls) < benchTargets {
		b.Fatalf("the exporter process gave %d URLs: %v", len(urls), lines.Err())
	}
	return urls
}

// serveExporters serves benchTargets exporters until killed. Every scrape
// sees every counter and histogram grown a little, as a busy service's.
func serveExporters() {
	for i := range benchTargets {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		e := &benchExporter{rnd: rand.New(rand.NewPCG(uint64(i), 1))}
		go func() { _ = http.Serve(l, e) }()
		fmt.Printf("http://%s/metrics\n", l.Addr())
	}
	select {}
}

type benchExporter struct {
	mu      sync.Mutex
	rnd     *rand.Rand
	counts  [benchCounters]float64
	buckets [benchHistograms][benchBuckets - 1]float64 // the finite ones
	totals  [benchHistograms]float64                   // the +Inf bucket
	sums    [benchHistograms]float64
	buf     bytes.Buffer
}

func (e *benchExporter) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.buf.Reset()
	e.buf.WriteString("# TYPE bench_requests_total counter\n")
	for i := range e.counts {
		e.counts[i] += float64(e.rnd.IntN(20))
		fmt.Fprintf(&e.buf, "bench_requests_total{route=\"r%d\",code=\"%d\"} %g\n", i/6, 200+i%6, e.counts[i])
	}
	e.buf.WriteString("# TYPE bench_duration_seconds histogram\n")
	for h := range e.buckets {
		for range e.rnd.IntN(20) {
			d := e.rnd.ExpFloat64() * 0.05
			e.sums[h] += d
			e.totals[h]++
			for j := range e.buckets[h] {
				if d <= bucketBound(j) {
					e.buckets[h][j]++
				}
			}
		}
		for j, n := range e.buckets[h] {
			fmt.Fprintf(&e.buf, "bench_duration_seconds_bucket{route=\"r%d\",le=\"%g\"} %g\n", h, bucketBound(j), n)
		}
		fmt.Fprintf(&e.buf, "bench_duration_seconds_bucket{route=\"r%d\",le=\"+Inf\"} %g\n", h, e.totals[h])
		fmt.Fprintf(&e.buf, "bench_duration_seconds_sum{route=\"r%d\"} %g\n", h, e.sums[h])
		fmt.Fprintf(&e.buf, "bench_duration_seconds_count{route=\"r%d\"} %g\n", h, e.totals[h])
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	_, _ = w.Write(e.buf.Bytes())
}

// bucketBound is the upper bound of finite bucket j: 1 ms doubling.
func bucketBound(j int) float64 { return 0.001 * float64(int(1)<<j) }
