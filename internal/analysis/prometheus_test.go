package analysis

import (
	"context"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestPrometheusClient speaks Prometheus's JSON API from an httptest server.
func TestPrometheusClient(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Sample
		err  string
	}{
		{"one series", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[600,"97.5"]}]}}`, Sample{Value: 97.5, OK: true}, ""},
		{"scalar", `{"status":"success","data":{"resultType":"scalar","result":[600,"3"]}}`, Sample{Value: 3, OK: true}, ""},
		{"zero is a value", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[600,"0"]}]}}`, Sample{Value: 0, OK: true}, ""},
		{"empty result is no data", `{"status":"success","data":{"resultType":"vector","result":[]}}`, Sample{}, ""},
		{"NaN is no data", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[600,"NaN"]}]}}`, Sample{}, ""},
		{"+Inf is a value", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[600,"+Inf"]}]}}`, Sample{Value: posInf, OK: true}, ""},
		{"several series", `{"status":"success","data":{"resultType":"vector","result":[{"metric":{"a":"1"},"value":[600,"1"]},{"metric":{"a":"2"},"value":[600,"2"]}]}}`, Sample{}, "query gave 2 series, want one"},
		{"query error", `{"status":"error","errorType":"bad_data","error":"1:5: parse error: unexpected end of input"}`, Sample{}, "bad_data: 1:5: parse error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotQuery, gotTime string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_ = r.ParseForm()
				gotQuery, gotTime = r.Form.Get("query"), r.Form.Get("time")
				w.Header().Set("Content-Type", "application/json")
				if strings.Contains(tt.body, `"status":"error"`) {
					w.WriteHeader(http.StatusBadRequest)
				}
				_, _ = w.Write([]byte(tt.body))
			}))
			defer srv.Close()
			p, err := NewPrometheus(srv.URL, nil)
			if err != nil {
				t.Fatal(err)
			}
			got, err := p.Query(context.Background(), "sum(up)", time.Unix(600, 0))
			if gotQuery != "sum(up)" || !strings.HasPrefix(gotTime, "600") {
				t.Errorf("server got query %q at %q", gotQuery, gotTime)
			}
			switch {
			case tt.err != "":
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "prometheus at "+srv.URL) {
					t.Fatalf("err = %v, want it to name %s and contain %q", err, srv.URL, tt.err)
				}
			case err != nil:
				t.Fatal(err)
			case got != tt.want:
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestPrometheusDown: an unreachable server is an error check naming the
// address, never a fail.
func TestPrometheusDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := "http://" + l.Addr().String()
	l.Close() // nothing listens there now
	p, err := NewPrometheus(addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := &Analyzer{Querier: p}
	c := a.Check(context.Background(), Metric{Name: SuccessRate, Min: ptr(99)}, shop, Window{Since: time.Unix(0, 0), At: tenMin})
	if c.Decision != Error || !strings.Contains(c.Reason, "prometheus at "+addr+": ") || !strings.Contains(c.Reason, "connection refused") {
		t.Errorf("got %s: %s", c.Decision, c.Reason)
	}
	if c.Query == "" {
		t.Error("the check does not record the query it tried")
	}
}

// TestCheckJSON: a check with an infinite value round-trips through JSON,
// as the canary's state object stores it.
func TestCheckJSON(t *testing.T) {
	inf := Number(posInf)
	c := Check{Metric: Duration, Decision: Fail, Value: &inf, Max: numPtr(ptr(500)), Evidence: Number(posInf)}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	var back Check
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatalf("%v in %s", err, b)
	}
	if back.Value == nil || !math.IsInf(float64(*back.Value), 1) || *back.Max != 500 || !math.IsInf(float64(back.Evidence), 1) {
		t.Errorf("round trip of %s gave %+v", b, back)
	}
}
