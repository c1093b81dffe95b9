// Package auth authenticates gRPC callers by JWT (RS256 or ES256 only) or
// API key and authorises them against a per-service RBAC Policy. It owns
// the rule that credentials never reach a log line or an error message:
// failures are logged with a reason, never with the token or key.
//
// Health checks and reflection-free probes are always public; every other
// method must appear in the Policy or it is refused (fail closed).
package auth

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"

	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// Metadata keys (lower case, as gRPC carries them). The gateway forwards
// the HTTP headers Authorization and X-API-Key under these names.
const (
	AuthorizationKey = "authorization"
	APIKeyKey        = "x-api-key"
)

// Principal is an authenticated caller.
type Principal struct {
	Subject string
	Roles   []string
	// Via is "jwt" or "api_key".
	Via string
}

type principalKey struct{}

// PrincipalFrom returns the caller authenticated for ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(Principal)
	return p, ok
}

// WithPrincipal returns ctx carrying p; handlers and tests use it.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// alwaysPublic are methods probes call without credentials.
var alwaysPublic = map[string]bool{
	"/grpc.health.v1.Health/Check": true,
	"/grpc.health.v1.Health/Watch": true,
	"/grpc.health.v1.Health/List":  true,
}

// Authenticator checks credentials and the policy for every call.
type Authenticator struct {
	// jwt and keys are swapped whole when their files change, so a call
	// sees either the old keys or the new, never a mix.
	jwt    atomic.Pointer[JWTVerifier]
	keys   atomic.Pointer[APIKeys]
	policy Policy
	// rejections logs refusals sampled; failures, subjects and global are
	// the Limits (nil when off).
	rejections *sampledLog
	failures   *limiters
	subjects   *limiters
	global     *rate.Limiter
}

// New returns an Authenticator with no Limits. jwt and keys may be nil;
// with both nil every non-public call is refused, which is the safe
// default.
func New(policy Policy, jwt *JWTVerifier, keys *APIKeys, logger *slog.Logger) *Authenticator {
	a := &Authenticator{policy: policy, rejections: &sampledLog{logger: logger}}
	a.jwt.Store(jwt)
	a.keys.Store(keys)
	return a
}

// WithLimits sets l and returns a; call it before the first call.
func (a *Authenticator) WithLimits(l Limits) *Authenticator {
	a.failures = newLimiters(l.FailuresPerSecond, l.FailureBurst)
	a.subjects = newLimiters(l.SubjectPerSecond, l.SubjectBurst)
	a.global = nil
	if l.GlobalPerSecond > 0 {
		a.global = rate.NewLimiter(rate.Limit(l.GlobalPerSecond), max(l.GlobalBurst, 1))
	}
	return a
}

// SetJWT replaces the JWT verifier, as when its key files changed; calls
// already past authentication are not affected.
func (a *Authenticator) SetJWT(v *JWTVerifier) { a.jwt.Store(v) }

// SetAPIKeys replaces the API keys, as when their file changed. A key
// listed before and after with the same limits keeps its rate limiter, so
// a reload never refills a caller's burst.
func (a *Authenticator) SetAPIKeys(k *APIKeys) {
	if old := a.keys.Load(); old != nil && k != nil {
		k.keepLimiters(old)
	}
	a.keys.Store(k)
}

// Authenticate returns ctx with the caller's Principal, or a gRPC status
// error (Unauthenticated, PermissionDenied or ResourceExhausted) that
// IsRejection recognises. Each kind of refusal is logged here, sampled.
func (a *Authenticator) Authenticate(ctx context.Context, method string) (context.Context, error) {
	if alwaysPublic[method] || a.policy.Public[method] {
		return ctx, nil
	}
	if a.global != nil && !a.global.Allow() {
		a.rejections.log(ctx, "auth rate limited", "process", slog.String("method", method), slog.String("limit", "process"))
		return ctx, &rejection{limited("this replica is at its request limit; retry later")}
	}
	// Credentials are checked even from an address over its failure
	// budget, and good ones pass: many callers can share one address (a
	// NAT, or the sidecar every meshed call arrives from), and one of them
	// failing must not lock the others out. API keys and signatures are
	// too long to guess, so the limit only slows and quiets a flood of bad
	// credentials (ResourceExhausted, Retry-After), under the process limit.
	addr := clientAddress(ctx)
	p, err := a.verify(ctx)
	if err != nil && status.Code(err) == codes.Unauthenticated && a.failures.exhausted(addr) {
		a.rejections.log(ctx, "auth rate limited", "failures", slog.String("method", method), slog.String("limit", "failed authentications"), slog.String("client", addr))
		return ctx, &rejection{limited("too many failed authentications from this address; retry later")}
	}
	if err != nil {
		if status.Code(err) == codes.Unauthenticated { // not a key over its own rate
			a.failures.take(addr)
		}
		reason := status.Convert(err).Message()
		a.rejections.log(ctx, "auth rejected", reason, slog.String("method", method), slog.String("reason", reason), slog.String("client", addr))
		return ctx, &rejection{err}
	}
	if p.Via == "jwt" && !a.subjects.take(p.Subject) {
		a.rejections.log(ctx, "auth rate limited", "subject", slog.String("method", method), slog.String("limit", "subject"), slog.String("subject", p.Subject))
		return ctx, &rejection{limited("subject %q is calling too fast", p.Subject)}
	}
	if !a.policy.Allowed(p, method) {
		a.rejections.log(ctx, "auth forbidden", p.Subject+" "+method, slog.String("method", method), slog.String("subject", p.Subject), slog.Any("roles", p.Roles))
		return ctx, &rejection{status.Errorf(codes.PermissionDenied, "%s may not call %s", p.Subject, method)}
	}
	return WithPrincipal(ctx, p), nil
}

// verify checks the credentials the call carries.
func (a *Authenticator) verify(ctx context.Context) (Principal, error) {
	authz := first(ctx, AuthorizationKey)
	key := first(ctx, APIKeyKey)

	var (
		p    Principal
		err  error
		jwt  = a.jwt.Load()
		keys = a.keys.Load()
	)
	switch {
	case authz != "":
		scheme, token, ok := strings.Cut(authz, " ")
		switch {
		case !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "":
			err = status.Error(codes.Unauthenticated, "authorization must be \"Bearer <token>\"")
		case jwt == nil:
			err = status.Error(codes.Unauthenticated, "bearer tokens are not accepted: no JWT key is configured")
		default:
			p, err = jwt.Verify(strings.TrimSpace(token))
		}
	case key != "":
		if keys == nil {
			err = status.Error(codes.Unauthenticated, "unknown or expired API key")
		} else {
			p, err = keys.Verify(key)
		}
	default:
		err = status.Error(codes.Unauthenticated, "missing credentials: send Authorization: Bearer <token> or X-API-Key")
	}
	return p, err
}

// rejection is a call Authenticate refused; it has already been logged.
type rejection struct{ err error }

func (r *rejection) Error() string { return r.err.Error() }

// GRPCStatus is the refusal's status, for grpc's status package and the
// caller.
func (r *rejection) GRPCStatus() *status.Status { return status.Convert(r.err) }

// IsRejection reports whether err is Authenticate refusing a call, which
// it logs itself, sampled: the call's own log line may then stay at debug.
func IsRejection(err error) bool {
	var r *rejection
	return errors.As(err, &r)
}

// first reads one metadata key without copying the whole incoming map,
// as metadata.FromIncomingContext would on every call.
func first(ctx context.Context, k string) string {
	if v := metadata.ValueFromIncomingContext(ctx, k); len(v) > 0 {
		return v[0]
	}
	return ""
}

// Unary authenticates unary calls.
func (a *Authenticator) Unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.Authenticate(ctx, info.FullMethod)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// Stream authenticates streaming calls once, at the start.
func (a *Authenticator) Stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.Authenticate(ss.Context(), info.FullMethod)
		if err != nil {
			return err
		}
		return handler(srv, &wrapped{ServerStream: ss, ctx: ctx})
	}
}

type wrapped struct {
	grpc.ServerStream
	ctx context.Context
}

func (w *wrapped) Context() context.Context { return w.ctx }
