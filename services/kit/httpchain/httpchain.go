// Package httpchain is the HTTP counterpart of grpcchain, for the gateway
// and admin ports, in the same order:
//
//	otelhttp (W3C trace context) -> metrics -> request id -> logging ->
//	panic recovery -> body limit -> handler
//
// Auth and validation are not repeated here for the gateway: every gateway
// request becomes a call through the full grpcchain (see package gateway).
//
// Every request is counted and timed in metrics. The "http request" log
// line is written at error for 5xx answers, at info for 4xx answers and
// for requests slower than Options.SlowRequest, and at debug for the
// rest, so a busy port does not write one JSON line per success
// (LOG_LEVEL=debug brings them back). Quiet paths (probes, scrapes) are
// at debug whatever they answer except 500, a failure of the handler
// itself: a 503 from /health/ready during start-up or drain is the
// probe's answer, not an error of the port.
package httpchain

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"

	"github.com/msctl/msctl/services/kit/metrics"
	"github.com/msctl/msctl/services/kit/requestid"
)

// Options configure Wrap.
type Options struct {
	// Server names this port in metrics and logs: "gateway" or "admin".
	Server  string
	Logger  *slog.Logger
	Metrics *metrics.HTTP
	// MaxBodyBytes caps request bodies; 0 means no cap. A declared length
	// over the cap is answered 413 before the handler runs.
	MaxBodyBytes int64
	// Quiet paths are served and logged at debug, unless they answer 500
	// (probes, scrapes: their answers, 503 included, are for the caller).
	Quiet func(path string) bool
	// SlowRequest is the duration from which a successful request is
	// logged at info; 0 means DefaultSlowRequest.
	SlowRequest time.Duration
}

// DefaultSlowRequest is the SlowRequest used when Options leave it 0.
const DefaultSlowRequest = 250 * time.Millisecond

// Wrap returns h behind the middleware chain.
func Wrap(h http.Handler, o Options) http.Handler {
	h = limitBody(h, o.MaxBodyBytes)
	h = recoverPanic(h, o.Logger)
	h = logAndMeasure(h, o)
	return otelhttp.NewHandler(h, o.Server, otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
		return r.Method + " " + o.Server
	}))
}

type recorder struct {
	http.ResponseWriter
	code  int
	bytes int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	n, err := r.ResponseWriter.Write(b)
	r.bytes += n
	return n, err
}

// Flush keeps streaming responses (server streams through the gateway)
// working behind the recorder.
func (r *recorder) Flush() {
	if f, ok := r.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the real writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// level picks the log level of a finished request.
func level(code int, d time.Duration, path string, o Options, slow time.Duration) slog.Level {
	quiet := o.Quiet != nil && o.Quiet(path)
	switch {
	case quiet && code != http.StatusInternalServerError:
		return slog.LevelDebug
	case code >= 500:
		return slog.LevelError
	case code == http.StatusUnauthorized || code == http.StatusTooManyRequests:
		// The kit's auth refused it and logged that itself, sampled: a
		// flood of bad credentials must not be a flood of lines.
		return slog.LevelDebug
	case code >= 400 || d >= slow:
		return slog.LevelInfo
	}
	return slog.LevelDebug
}

func logAndMeasure(next http.Handler, o Options) http.Handler {
	slow := o.SlowRequest
	if slow <= 0 {
		slow = DefaultSlowRequest
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := requestid.Accept(r.Header.Get(requestid.Header))
		r.Header.Set(requestid.Header, id) // the gateway forwards it to gRPC
		w.Header().Set(requestid.Header, id)
		ctx := requestid.With(r.Context(), id)
		rec := &recorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(ctx))
		if rec.code == 0 {
			rec.code = http.StatusOK
		}
		d := time.Since(start)
		if o.Metrics != nil {
			o.Metrics.Observe(ctx, o.Server, r.Method, rec.code, d)
		}
		lvl := level(rec.code, d, r.URL.Path, o, slow)
		if !o.Logger.Enabled(ctx, lvl) {
			return
		}
		// The query string is left out: it may carry filters with personal
		// data, and credentials never travel there.
		o.Logger.LogAttrs(ctx, lvl, "http request",
			slog.String("server", o.Server), slog.String("method", r.Method),
			slog.String("path", r.URL.Path), slog.Int("status", rec.code),
			slog.Int("bytes", rec.bytes), slog.Duration("duration", d))
	})
}

func recoverPanic(next http.Handler, l *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				l.ErrorContext(r.Context(), "panic in HTTP handler", "panic", v, "stack", string(debug.Stack()))
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusInternalServerError)
				_, _ = w.Write([]byte(`{"error":{"code":500,"status":"INTERNAL","message":"internal error"}}` + "\n"))
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func limitBody(next http.Handler, limit int64) http.Handler {
	if limit <= 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			_, _ = w.Write([]byte(`{"error":{"code":413,"status":"PAYLOAD_TOO_LARGE","message":"request body too large"}}` + "\n"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}
