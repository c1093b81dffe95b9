package auth

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Limits bound how fast callers may use one process, beside each API
// key's own rate. Every limit is per process: n replicas admit n times as
// much in all (the README of services says how to size them). A zero rate
// turns that limit off.
type Limits struct {
	// FailuresPerSecond and FailureBurst bound failed authentications per
	// client address. Past them, an address's bad credentials are refused
	// with ResourceExhausted until its budget refills; good credentials
	// from it still pass, so a failing caller cannot lock out the others
	// behind the same address.
	FailuresPerSecond float64
	FailureBurst      int
	// SubjectPerSecond and SubjectBurst bound each JWT subject's calls, as
	// RatePerSecond and Burst bound each API key's.
	SubjectPerSecond float64
	SubjectBurst     int
	// GlobalPerSecond and GlobalBurst bound all calls to non-public
	// methods, checked first, so a flood costs no signature checks.
	GlobalPerSecond float64
	GlobalBurst     int
}

// ErrLimited is wrapped in the ResourceExhausted status of a call refused
// by Limits.
var ErrLimited = errors.New("rate limit exceeded")

// maxTracked bounds how many addresses or subjects a limiter map holds:
// made-up addresses must not grow memory without bound.
const maxTracked = 10_000

// limiters are token buckets by key (a client address, a subject).
type limiters struct {
	perSecond rate.Limit
	burst     int
	mu        sync.Mutex
	byKey     map[string]*rate.Limiter
}

func newLimiters(perSecond float64, burst int) *limiters {
	if perSecond <= 0 {
		return nil
	}
	return &limiters{perSecond: rate.Limit(perSecond), burst: max(burst, 1), byKey: map[string]*rate.Limiter{}}
}

// get returns key's bucket, making it if need be. When the map is full,
// buckets that have refilled (they remember nothing) are dropped first; if
// that is not enough, all are, which errs towards admitting callers.
func (l *limiters) get(key string) *rate.Limiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if b, ok := l.byKey[key]; ok {
		return b
	}
	if len(l.byKey) >= maxTracked {
		now := time.Now()
		for k, b := range l.byKey {
			if b.TokensAt(now) >= float64(l.burst) {
				delete(l.byKey, k)
			}
		}
		if len(l.byKey) >= maxTracked {
			clear(l.byKey)
		}
	}
	b := rate.NewLimiter(l.perSecond, l.burst)
	l.byKey[key] = b
	return b
}

// exhausted reports whether key has no token left, without taking one.
// It never adds key: only failures are tracked, so callers that never
// fail cost the map nothing.
func (l *limiters) exhausted(key string) bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	b, ok := l.byKey[key]
	l.mu.Unlock()
	return ok && b.Tokens() < 1
}

// take takes one of key's tokens and reports whether there was one.
func (l *limiters) take(key string) bool {
	return l == nil || l.get(key).Allow()
}

// limited is a call refused by a limit.
func limited(format string, args ...any) error {
	return status.Errorf(codes.ResourceExhausted, "%v: "+format, append([]any{ErrLimited}, args...)...)
}

// clientAddress is who a failed authentication is held against: for a
// gRPC call, the address the mesh's ingress gateway saw
// (x-envoy-external-address) when the connection comes from loopback (the
// pod's sidecar), else the connection's peer; for a call from the
// in-process HTTP gateway, the HTTP peer it appended to x-forwarded-for.
// The header is believed only from loopback: a client that reaches the
// port directly could otherwise name a fresh address on every call and
// never run out of failures.
func clientAddress(ctx context.Context) string {
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		host, _, err := net.SplitHostPort(p.Addr.String())
		if err != nil {
			host = p.Addr.String()
		}
		if ip := net.ParseIP(host); ip != nil && ip.IsLoopback() {
			if a := first(ctx, "x-envoy-external-address"); a != "" {
				return a
			}
		}
		return host
	}
	if xff := metadata.ValueFromIncomingContext(ctx, "x-forwarded-for"); len(xff) > 0 {
		hops := strings.Split(xff[len(xff)-1], ",")
		return strings.TrimSpace(hops[len(hops)-1])
	}
	return ""
}

// sampledLog writes the first of a kind of rejection at once and then at
// most one a second, each line counting the ones left out since the last:
// a flood of bad requests must not become a flood of log lines.
type sampledLog struct {
	logger *slog.Logger
	mu     sync.Mutex
	kinds  map[string]*sample
}

type sample struct {
	last    time.Time
	skipped int
}

const sampleEvery = time.Second

func (s *sampledLog) log(ctx context.Context, msg, kind string, attrs ...slog.Attr) {
	s.mu.Lock()
	if s.kinds == nil || len(s.kinds) >= 1000 {
		s.kinds = map[string]*sample{} // kinds are reasons and subjects: few, but bounded all the same
	}
	k, ok := s.kinds[msg+"\x00"+kind]
	if !ok {
		k = &sample{}
		s.kinds[msg+"\x00"+kind] = k
	}
	now := time.Now()
	if now.Sub(k.last) < sampleEvery {
		k.skipped++
		s.mu.Unlock()
		return
	}
	skipped := k.skipped
	k.last, k.skipped = now, 0
	s.mu.Unlock()
	s.logger.LogAttrs(ctx, slog.LevelInfo, msg, append(attrs, slog.Int("not_logged_since_last", skipped))...)
}
