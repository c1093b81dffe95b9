package metrics_test

import (
	"bufio"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msctl/msctl/services/kit/httpchain"
	"github.com/msctl/msctl/services/kit/metrics"
)

// A client that makes up request methods, before any credential is
// checked, must not grow /metrics: a thousand methods nobody registered
// all land in one label value, one series set at most.
func TestMadeUpMethodsShareOneSeriesSet(t *testing.T) {
	reg := metrics.NewRegistry("test", "test")
	m := metrics.NewHTTP(reg)
	api := httptest.NewServer(httpchain.Wrap(http.NotFoundHandler(), httpchain.Options{Server: "gateway", Logger: slog.New(slog.DiscardHandler), Metrics: m}))
	defer api.Close()
	admin := httptest.NewServer(metrics.Handler(reg))
	defer admin.Close()

	send := func(method string) {
		req, err := http.NewRequest(method, api.URL+"/api/v1/things", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	send(http.MethodGet)
	// One method, one code: one series set (the counter and the histogram).
	set := httpSeries(t, admin.URL)
	for i := range 1000 {
		send(fmt.Sprintf("X-METHOD-%d", i))
	}
	after := httpSeries(t, admin.URL)
	if len(after) > 2*len(set) {
		t.Errorf("/metrics grew from %d to %d http_server_ series after 1,000 made-up methods; one series set is %d", len(set), len(after), len(set))
	}
	for _, s := range after {
		if strings.Contains(s, "X-METHOD") {
			t.Fatalf("a made-up method is a label value: %s", s)
		}
	}
	if !strings.Contains(strings.Join(after, "\n"), `method="other"`) {
		t.Errorf(`no method="other" series in:\n%s`, strings.Join(after, "\n"))
	}
}

// httpSeries scrapes the http_server_ series (one line each) at url.
func httpSeries(t *testing.T, url string) []string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "http_server_") {
			out = append(out, sc.Text())
		}
	}
	return out
}
