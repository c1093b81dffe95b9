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
	"log/slog"
	"strings"
	"sync/atomic"

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
	logger *slog.Logger
}

// New returns an Authenticator. jwt and keys may be nil; with both nil every
// non-public call is refused, which is the safe default.
func New(policy Policy, jwt *JWTVerifier, keys *APIKeys, logger *slog.Logger) *Authenticator {
	a := &Authenticator{policy: policy, logger: logger}
	a.jwt.Store(jwt)
	a.keys.Store(keys)
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
// error: Unauthenticated, PermissionDenied or ResourceExhausted.
func (a *Authenticator) Authenticate(ctx context.Context, method string) (context.Context, error) {
	if alwaysPublic[method] || a.policy.Public[method] {
		return ctx, nil
	}
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
	if err != nil {
		a.logger.InfoContext(ctx, "auth rejected", "method", method, "reason", status.Convert(err).Message())
		return ctx, err
	}
	if !a.policy.Allowed(p, method) {
		a.logger.InfoContext(ctx, "auth forbidden", "method", method, "subject", p.Subject, "roles", p.Roles)
		return ctx, status.Errorf(codes.PermissionDenied, "%s may not call %s", p.Subject, method)
	}
	return WithPrincipal(ctx, p), nil
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
