package analysis

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
)

// BenchmarkCountSinceStart prices the count of a canary's requests since
// its start, on Prometheus's engine: an hour of 1 s samples of 60 series
// (callers by response codes), as a long canary's sequential check reads
// them every few seconds. "exact" is sumIncrease, "increase" the plain
// sum(increase()) it replaced, which drops each new series' first requests,
// and "total" the success rate's count, which adds the requests no canary
// pod received (no such series here, as in a healthy canary).
func BenchmarkCountSinceStart(b *testing.B) {
	var load strings.Builder
	load.WriteString("load 1s\n")
	for caller := range 20 {
		for _, code := range []string{"200", "500", "503"} {
			fmt.Fprintf(&load, "\tistio_requests_total{reporter=\"destination\",destination_workload_namespace=\"shop\",destination_workload=\"user-canary\",source_workload=\"c%d\",response_code=%q} 0+1x3600\n", caller, code)
		}
	}
	q := newEngineQuerier(b, load.String())
	sel := `istio_requests_total{reporter="destination",destination_workload_namespace="shop",destination_workload=~"user-canary"}`
	total, _ := countTemplates(Metric{Name: SuccessRate, Min: ptr(99.0)})
	for _, tc := range []struct{ name, tpl string }{
		{"exact", sumIncrease(sel)},
		{"increase", `sum(increase(` + sel + `[{{ interval }}]))`},
		{"total", total},
	} {
		query, err := parseTemplate(tc.tpl, vars(shop, time.Hour))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if s, err := q.Query(context.Background(), query, time.Unix(3600, 0)); err != nil || !s.OK {
					b.Fatal(s, err)
				}
			}
		})
	}
}
