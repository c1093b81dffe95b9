// Package grpcchain assembles the one server-side interceptor order every
// service uses, for unary and streaming calls alike:
//
//	otelgrpc stats handler -> metrics -> request id -> logging -> auth ->
//	validation -> starting -> fault injection -> panic recovery -> handler
//
// Metrics and logging sit outside auth so rejected calls are counted and
// logged; recovery sits innermost so a panic becomes codes.Internal that
// the outer layers still see.
//
// Every call is counted and timed in metrics. The "grpc call" log line is
// written at info for client mistakes (and auth failures), at error for
// the service's own failures, at info for a unary call slower than
// Options.SlowCall and for every stream that ends; a unary call that
// succeeds quickly is logged at debug only, so a busy service does not
// spend its time writing one JSON line per request (LOG_LEVEL=debug
// brings them back).
//
// "starting" refuses calls while the service's database is not open yet
// (Options.Starting), so handlers may assume an open store.
//
// InProcess runs the same unary chain for a caller in the same process,
// such as the HTTP gateway (see package gateway).
package grpcchain

import (
	"context"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/fault"
	"github.com/msctl/msctl/services/kit/metrics"
	"github.com/msctl/msctl/services/kit/requestid"
	"github.com/msctl/msctl/services/kit/validation"
)

// Options are the parts of the chain; nil parts are left out.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.GRPC
	Auth    *auth.Authenticator
	Fault   fault.Injector
	// SlowCall is the duration from which a successful unary call is
	// logged at info; 0 means DefaultSlowCall.
	SlowCall time.Duration
	// Starting, if set, is asked before each call but a health check,
	// after auth and validation: while it returns an error (the store is
	// not open yet), the call is answered Unavailable with that error's
	// text, so handlers may assume their store is open.
	Starting func() error
}

// DefaultSlowCall is the SlowCall used when Options leave it 0: healthy
// calls take about a millisecond.
const DefaultSlowCall = 250 * time.Millisecond

// Validator is implemented by request messages that can check their own
// shape; a failure becomes codes.InvalidArgument before the handler runs.
type Validator interface {
	Validate() error
}

// ServerOptions returns the stats handler and the chained interceptors.
func ServerOptions(o Options) []grpc.ServerOption {
	unary, stream := interceptors(o)
	return []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
}

// unaryChain returns the unary chain of ServerOptions as one interceptor,
// for InProcess.
func unaryChain(o Options) grpc.UnaryServerInterceptor {
	unary, _ := interceptors(o)
	return chainUnary(unary)
}

// chainUnary runs interceptors outermost first, as
// grpc.ChainUnaryInterceptor does.
func chainUnary(is []grpc.UnaryServerInterceptor) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		return callFrom(is, 0, ctx, req, info, handler)
	}
}

func callFrom(is []grpc.UnaryServerInterceptor, i int, ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if i == len(is) {
		return handler(ctx, req)
	}
	return is[i](ctx, req, info, func(ctx context.Context, req any) (any, error) {
		return callFrom(is, i+1, ctx, req, info, handler)
	})
}

func interceptors(o Options) ([]grpc.UnaryServerInterceptor, []grpc.StreamServerInterceptor) {
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	slow := o.SlowCall
	if slow <= 0 {
		slow = DefaultSlowCall
	}
	if o.Metrics != nil {
		unary = append(unary, o.Metrics.Unary())
		stream = append(stream, o.Metrics.Stream())
	}
	unary = append(unary, requestIDUnary, logUnary(o.Logger, slow))
	stream = append(stream, requestIDStream, logStream(o.Logger))
	if o.Auth != nil {
		unary = append(unary, o.Auth.Unary())
		stream = append(stream, o.Auth.Stream())
	}
	unary = append(unary, validateUnary)
	stream = append(stream, validateStream)
	if o.Starting != nil {
		unary = append(unary, startingUnary(o.Starting))
		stream = append(stream, startingStream(o.Starting))
	}
	if o.Fault.Enabled() {
		unary = append(unary, o.Fault.Unary())
		stream = append(stream, o.Fault.Stream())
	}
	unary = append(unary, recoverUnary(o.Logger))
	stream = append(stream, recoverStream(o.Logger))
	return unary, stream
}

// stream lets an interceptor replace a stream's context.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

func withRequestID(ctx context.Context) context.Context {
	var id string
	// ValueFromIncomingContext reads one key; FromIncomingContext would
	// copy the whole metadata map on every call.
	if v := metadata.ValueFromIncomingContext(ctx, requestid.Header); len(v) > 0 {
		id = v[0]
	}
	id = requestid.Accept(id)
	// Echo the id so callers can quote it in a bug report.
	_ = grpc.SetHeader(ctx, metadata.Pairs(requestid.Header, id))
	return requestid.With(ctx, id)
}

func requestIDUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	return handler(withRequestID(ctx), req)
}

func requestIDStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	return handler(srv, &stream{ServerStream: ss, ctx: withRequestID(ss.Context())})
}

// level keeps client mistakes at info and our own failures at error, so
// error-level logs mean something is wrong with the service. A call auth
// refused is at debug: auth logs refusals itself, sampled, so a flood of
// bad credentials is not a flood of lines.
func level(err error) slog.Level {
	if auth.IsRejection(err) {
		return slog.LevelDebug
	}
	switch status.Code(err) {
	case codes.OK, codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists,
		codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.ResourceExhausted:
		return slog.LevelInfo
	}
	return slog.LevelError
}

// unaryLevel is level, except that a unary call that succeeded within
// slow is logged at debug: metrics count every call, and one info line
// per successful request cost a busy service more than its handlers.
func unaryLevel(err error, d, slow time.Duration) slog.Level {
	if err == nil && d < slow {
		return slog.LevelDebug
	}
	return level(err)
}

func logCall(ctx context.Context, l *slog.Logger, lvl slog.Level, method string, d time.Duration, err error, h *holder) {
	if !l.Enabled(ctx, lvl) {
		return
	}
	ctx = h.ctx(ctx)
	st := status.Convert(err)
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", st.Code().String()),
		slog.Duration("duration", d),
	}
	if p, ok := auth.PrincipalFrom(ctx); ok {
		attrs = append(attrs, slog.String("subject", p.Subject))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", st.Message()))
	}
	l.LogAttrs(ctx, lvl, "grpc call", attrs...)
}

func logUnary(l *slog.Logger, slow time.Duration) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		// The principal is added to a context inside the chain; capture it
		// through a holder so the log line can name the caller.
		h := &holder{}
		resp, err := handler(withHolder(ctx, h), req)
		d := time.Since(start)
		logCall(ctx, l, unaryLevel(err, d, slow), info.FullMethod, d, err, h)
		return resp, err
	}
}

func logStream(l *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		h := &holder{}
		err := handler(srv, &stream{ServerStream: ss, ctx: withHolder(ss.Context(), h)})
		logCall(ss.Context(), l, level(err), info.FullMethod, time.Since(start), err, h)
		return err
	}
}

func validateUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if v, ok := req.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, invalid(err)
		}
	}
	remember(ctx)
	return handler(ctx, req)
}

func validateStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	remember(ss.Context())
	return handler(srv, &validatingStream{ServerStream: ss})
}

// invalid is the status of a request that failed its shape check, on one
// line whichever way the validator joined its problems.
func invalid(err error) error {
	return status.Error(codes.InvalidArgument, validation.OneLine(err.Error()))
}

// validatingStream validates each message a streaming handler receives.
type validatingStream struct{ grpc.ServerStream }

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if v, ok := m.(Validator); ok {
		if err := v.Validate(); err != nil {
			return invalid(err)
		}
	}
	return nil
}

// starting refuses a call while the service is starting; health checks
// pass, since they report exactly that.
func starting(check func() error, method string) error {
	if strings.HasPrefix(method, "/grpc.health.") {
		return nil
	}
	if err := check(); err != nil {
		return status.Error(codes.Unavailable, err.Error())
	}
	return nil
}

func startingUnary(check func() error) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := starting(check, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

func startingStream(check func() error) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := starting(check, info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
}

func recoverUnary(l *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		defer func() {
			if r := recover(); r != nil {
				l.ErrorContext(ctx, "panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				resp, err = nil, status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(ctx, req)
	}
}

func recoverStream(l *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
		defer func() {
			if r := recover(); r != nil {
				l.ErrorContext(ss.Context(), "panic in handler", "method", info.FullMethod, "panic", r, "stack", string(debug.Stack()))
				err = status.Error(codes.Internal, "internal error")
			}
		}()
		return handler(srv, ss)
	}
}
