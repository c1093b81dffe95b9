package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// connectTimeout is render's DestinationRule's connectTimeout.
	connectTimeout = 3 * time.Second
	// retryBackoff is Envoy's base interval between retries.
	retryBackoff = 25 * time.Millisecond
	// mirrorBodyLimit is the largest request body copied to the canary;
	// a larger one is not mirrored rather than held in memory.
	mirrorBodyLimit = 1 << 20
	// mirrorsInFlight bounds the mirrored requests waiting on a slow
	// canary; beyond it, copies are dropped, never queued.
	mirrorsInFlight = 256
)

// gRPC status codes the gateway answers with itself.
const (
	grpcUnimplemented = 12
	grpcUnavailable   = 14
)

// forwarder sends requests to the upstreams: HTTP/1.1 to a process's HTTP
// listener, cleartext HTTP/2 to its gRPC listener, bodies streamed both
// ways.
type forwarder struct {
	g       *Gateway
	proxy   *httputil.ReverseProxy
	mirrors chan struct{}
}

// attempt is one request's dealings with its upstream, shared with the
// dialer and the error handler through the request's context.
type attempt struct {
	client  context.Context // the downstream request's, to tell its cancellation from a timeout
	retries int
	// Set by the error handler: what to count when the gateway answered
	// in the upstream's place.
	code       int
	grpcStatus string
	flags      string
}

type attemptKey struct{}

func newForwarder(g *Gateway) *forwarder {
	f := &forwarder{g: g, mirrors: make(chan struct{}, mirrorsInFlight)}
	dialer := &net.Dialer{Timeout: connectTimeout, KeepAlive: 30 * time.Second}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		retries := 0
		if a, ok := ctx.Value(attemptKey{}).(*attempt); ok {
			retries = a.retries
		}
		for try := 0; ; try++ {
			c, err := dialer.DialContext(ctx, network, addr)
			if err == nil || try >= retries {
				return c, err
			}
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(retryBackoff << try):
			}
		}
	}
	h1 := &http.Transport{
		DialContext:         dial,
		MaxIdleConnsPerHost: 1024,
		IdleConnTimeout:     90 * time.Second,
		// A proxy passes the client's encoding through, never adds one.
		DisableCompression: true,
	}
	var h2c http.Protocols
	h2c.SetUnencryptedHTTP2(true)
	h2 := &http.Transport{
		DialContext:        dial,
		IdleConnTimeout:    90 * time.Second,
		DisableCompression: true,
		Protocols:          &h2c,
	}
	f.proxy = &httputil.ReverseProxy{
		// The request arrives with its upstream URL set; the authority
		// stays the client's, and the client's address is appended to
		// X-Forwarded-For, as Envoy does.
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.Header["X-Forwarded-For"] = pr.In.Header["X-Forwarded-For"]
			pr.SetXForwarded()
		},
		Transport: roundTripper(func(r *http.Request) (*http.Response, error) {
			if isGRPC(r) {
				return h2.RoundTrip(r)
			}
			return h1.RoundTrip(r)
		}),
		// Responses of unknown length (gRPC, streams) are flushed on
		// every write; the proxy does that by itself.
		// Without a pool, every response allocates its own 32 KiB.
		BufferPool:   &bufferPool{},
		ErrorHandler: f.upstreamError,
		ErrorLog:     slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	return f
}

// bufferPool lends the proxy its copy buffers.
type bufferPool struct{ pool sync.Pool }

func (p *bufferPool) Get() []byte {
	if b, ok := p.pool.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 32<<10)
}

func (p *bufferPool) Put(b []byte) { p.pool.Put(&b) }

type roundTripper func(*http.Request) (*http.Response, error)

func (rt roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return rt(r) }

func isGRPC(r *http.Request) bool {
	return strings.HasPrefix(r.Header.Get("Content-Type"), "application/grpc")
}

// forward sends r by rt to s's stable or canary process, mirrors it when rt
// says so, and counts it.
func (f *forwarder) forward(w http.ResponseWriter, r *http.Request, src *source, s *service, st *state, rt *route, d draw) {
	start := time.Now()
	canary := rt.pick(d.route)
	dst := &s.dst[subsetIndex(canary)]
	grpc := isGRPC(r)
	addr := upstreamAddr(st.backend(canary), grpc)
	if addr == "" {
		// No process for the track: Envoy's "no healthy upstream",
		// which only the caller's sidecar sees.
		f.answer(w, grpc, http.StatusServiceUnavailable, "no healthy upstream")
		f.g.metrics.record(bySource, src, &s.unreached[subsetIndex(canary)], outcome{grpc: grpc, code: http.StatusServiceUnavailable,
			grpcStatus: grpcStatusIf(grpc, grpcUnavailable), flags: "UH", millis: millisSince(start)})
		return
	}
	h := r.Header
	for _, name := range rt.remove {
		h.Del(name)
	}
	for name, v := range rt.set {
		h.Set(name, v)
	}
	for name, v := range rt.add {
		h.Add(name, v)
	}
	var mirror *mirrorCopy
	if rt.mirror > 0 && d.mirror < rt.mirror {
		mirror = copyForMirror(r)
	}
	f.send(w, r, src, dst, addr, rt, grpc, start)
	if mirror != nil {
		f.mirror(r, mirror, src, s, st, rt, grpc)
	}
}

func subsetIndex(canary bool) int {
	if canary {
		return 1
	}
	return 0
}

func upstreamAddr(b Backend, grpc bool) string {
	if grpc {
		return b.GRPC
	}
	return b.HTTP
}

// send proxies r to addr within rt's timeout and counts the outcome.
func (f *forwarder) send(w http.ResponseWriter, r *http.Request, src *source, dst *destination, addr string, rt *route, grpc bool, start time.Time) {
	a := &attempt{client: r.Context(), retries: rt.retries}
	ctx := context.WithValue(r.Context(), attemptKey{}, a)
	if rt.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, rt.timeout)
		defer cancel()
	}
	out := r.WithContext(ctx)
	u := *r.URL
	u.Scheme, u.Host = "http", addr
	out.URL = &u
	rec := &recorder{ResponseWriter: w}
	defer func() {
		// The proxy abandons a response it cannot finish (the upstream
		// reset it midway) by panicking; count it, then let it go on.
		p := recover()
		o := outcome{grpc: grpc, code: rec.code, flags: a.flags, millis: millisSince(start)}
		if o.code == 0 {
			o.code = http.StatusOK
		}
		if a.code != 0 || a.flags != "" {
			o.code, o.grpcStatus = a.code, a.grpcStatus
		} else if grpc {
			o.grpcStatus = grpcStatusOf(rec.Header())
		}
		if p != nil {
			switch {
			case a.client.Err() != nil:
				o.flags = "DC"
			case ctx.Err() == context.DeadlineExceeded:
				o.flags = "UT"
			default:
				o.flags = "UR"
			}
		}
		f.g.metrics.record(byDestination, src, dst, o)
		if p != nil {
			panic(p)
		}
	}()
	f.proxy.ServeHTTP(rec, out)
}

// upstreamError answers a request whose upstream gave no response, as
// Envoy would, and notes what to count.
func (f *forwarder) upstreamError(w http.ResponseWriter, r *http.Request, err error) {
	a, _ := r.Context().Value(attemptKey{}).(*attempt)
	if a == nil {
		a = &attempt{client: r.Context()}
	}
	grpc := isGRPC(r)
	f.g.log.Debug("gateway upstream error", "host", r.Host, "upstream", r.URL.Host, "path", r.URL.Path, "err", err)
	var op *net.OpError
	switch {
	case a.client.Err() != nil:
		// The client went away: nobody to answer. Envoy counts code 0.
		a.code, a.flags = 0, "DC"
		return
	case errors.Is(err, context.DeadlineExceeded):
		a.code, a.flags = http.StatusGatewayTimeout, "UT"
		f.answer(w, grpc, a.code, "upstream request timeout")
	case errors.As(err, &op) && op.Op == "dial":
		a.code, a.flags = http.StatusServiceUnavailable, "UF"
		f.answer(w, grpc, a.code, "upstream connect error: "+err.Error())
	default:
		a.code, a.flags = http.StatusServiceUnavailable, "UC"
		f.answer(w, grpc, a.code, "upstream connection error: "+err.Error())
	}
	a.grpcStatus = grpcStatusIf(grpc, grpcUnavailable)
}

// answer replies in the upstream's place: an HTTP status, or for gRPC
// a trailers-only response with status Unavailable, as Envoy maps 503 and
// 504; the status counted stays code.
func (f *forwarder) answer(w http.ResponseWriter, grpc bool, code int, msg string) {
	if grpc {
		grpcError(w, grpcUnavailable, msg)
		return
	}
	http.Error(w, msg, code)
}

func grpcError(w http.ResponseWriter, status int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "application/grpc")
	h.Set("Grpc-Status", strconv.Itoa(status))
	// grpc-message is percent-encoded outside printable ASCII.
	h.Set("Grpc-Message", grpcMessageEscaper(msg))
	w.WriteHeader(http.StatusOK)
}

func grpcMessageEscaper(msg string) string {
	var b strings.Builder
	for i := 0; i < len(msg); i++ {
		c := msg[i]
		if c < 0x20 || c > 0x7e || c == '%' {
			fmt.Fprintf(&b, "%%%02X", c)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

func grpcStatusIf(grpc bool, status int) string {
	if !grpc {
		return ""
	}
	return strconv.Itoa(status)
}

// grpcStatusOf reads the status the upstream sent: in the trailers, which
// the proxy leaves in the header map once the response is done (prefixed
// when the upstream did not announce them), or in the headers of a
// trailers-only response.
func grpcStatusOf(h http.Header) string {
	if s := h.Get("Grpc-Status"); s != "" {
		return s
	}
	return h.Get(http.TrailerPrefix + "Grpc-Status")
}

func millisSince(t time.Time) float64 {
	return float64(time.Since(t)) / float64(time.Millisecond)
}

// recorder notes the status code written through it.
type recorder struct {
	http.ResponseWriter
	code int
}

func (r *recorder) WriteHeader(code int) {
	if r.code == 0 && code >= 200 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// FlushError is what http.ResponseController calls to flush.
func (r *recorder) FlushError() error {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return http.NewResponseController(r.ResponseWriter).Flush()
}

func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// mirrorCopy keeps the request body as the upstream reads it, for the
// copy sent to the canary once the original is done.
type mirrorCopy struct {
	body io.ReadCloser // nil: no body

	mu   sync.Mutex
	buf  bytes.Buffer
	over bool // larger than mirrorBodyLimit
	eof  bool
}

// copyForMirror starts keeping r's body.
func copyForMirror(r *http.Request) *mirrorCopy {
	m := &mirrorCopy{}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		m.eof = true
		return m
	}
	m.body = r.Body
	r.Body = m
	return m
}

func (m *mirrorCopy) Read(p []byte) (int, error) {
	n, err := m.body.Read(p)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.over {
		if m.buf.Len()+n > mirrorBodyLimit {
			m.over = true
			m.buf = bytes.Buffer{}
		} else {
			m.buf.Write(p[:n])
		}
	}
	if err == io.EOF {
		m.eof = true
	}
	return n, err
}

func (m *mirrorCopy) Close() error { return m.body.Close() }

// complete is the whole body, if the upstream read all of it and it was
// small enough to keep.
func (m *mirrorCopy) complete() ([]byte, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.buf.Bytes(), m.eof && !m.over
}

// mirror sends a copy of r to the canary and discards the answer, after
// the original is done, so that the copy never delays it. It is counted
// as the canary's sidecar counts a mirrored request.
func (f *forwarder) mirror(r *http.Request, m *mirrorCopy, src *source, s *service, st *state, rt *route, grpc bool) {
	addr := upstreamAddr(st.canary, grpc)
	body, ok := m.complete()
	if addr == "" || !ok {
		return
	}
	select {
	case f.mirrors <- struct{}{}:
	default:
		return
	}
	req := r.Clone(context.Background())
	req.Host = shadowHost(r.Host)
	req.Body, req.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
	if len(body) == 0 {
		req.Body = http.NoBody
	}
	dst := &s.dst[1]
	go func() {
		defer func() {
			<-f.mirrors
			// A copy the canary cuts short is nobody's concern.
			if p := recover(); p != nil && p != http.ErrAbortHandler {
				panic(p)
			}
		}()
		f.send(discard{header: http.Header{}}, req, src, dst, addr, rt, grpc, time.Now())
	}()
}

// shadowHost is the authority of a mirrored request: Envoy appends
// "-shadow" to the host.
func shadowHost(host string) string {
	if h, port, err := net.SplitHostPort(host); err == nil {
		return net.JoinHostPort(h+"-shadow", port)
	}
	return host + "-shadow"
}

// discard is the response writer of a mirrored request.
type discard struct{ header http.Header }

func (d discard) Header() http.Header       { return d.header }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
func (discard) FlushError() error           { return nil }
