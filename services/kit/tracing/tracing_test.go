package tracing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel"

	"github.com/msctl/msctl/services/kit/config"
)

func TestSetup(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		exports bool
		badVar  string // the variable a *config.Error names, or ""
	}{
		{name: "no endpoint"},
		{name: "http endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}, exports: true},
		{name: "grpc endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, exports: true},
		{name: "disabled", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}},
		{name: "unknown protocol", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "carrier-pigeon"},
			badVar: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			logger := slog.New(slog.NewJSONHandler(&logs, nil))
			shutdown, exports, err := Setup(t.Context(), config.FromMap(tc.env), "widget", "v1", logger)
			if tc.badVar != "" {
				var bad *config.Error
				if !errors.As(err, &bad) || bad.Var != tc.badVar {
					t.Fatalf("error %v, want a *config.Error for %s", err, tc.badVar)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = shutdown(t.Context()) })
			if exports != tc.exports {
				t.Errorf("exports = %v, want %v", exports, tc.exports)
			}
			// The SDK reports a failed export through otel.Handle.
			otel.Handle(errors.New("traces export: connection refused"))
			var line map[string]any
			if err := json.Unmarshal(logs.Bytes(), &line); err != nil {
				t.Fatalf("the SDK error is not a JSON log line: %v: %q", err, logs.String())
			}
			if line["level"] != "WARN" || !strings.Contains(fmt.Sprint(line["error"]), "traces export") {
				t.Errorf("log line %v, want a warning carrying the error", line)
			}
			// Exported or not, a request gets a trace id for its logs.
			_, span := otel.Tracer("test").Start(t.Context(), "request")
			defer span.End()
			if !span.SpanContext().TraceID().IsValid() {
				t.Errorf("a span has no trace id")
			}
		})
	}
}

// TestExporterLogIsJSON: what the OTLP exporter logs itself, here about
// a malformed OTEL_EXPORTER_OTLP_HEADERS, is a JSON line of the service's
// log, not plain text on stderr.
func TestExporterLogIsJSON(t *testing.T) {
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "no-equals-sign")
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	env := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
	shutdown, _, err := Setup(t.Context(), config.FromMap(env), "widget", "v1", logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = shutdown(t.Context()) })
	found := false
	for raw := range strings.SplitSeq(strings.TrimSpace(logs.String()), "\n") {
		var line map[string]any
		if err := json.Unmarshal([]byte(raw), &line); err != nil {
			t.Fatalf("not a JSON log line: %q", raw)
		}
		found = found || strings.Contains(raw, "parse headers")
	}
	if !found {
		t.Fatalf("the exporter's complaint about OTEL_EXPORTER_OTLP_HEADERS is not in the log:\n%s", logs.String())
	}
}

// syncBuffer is a log sink the SDK's goroutines may write to.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
