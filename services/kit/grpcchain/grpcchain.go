// Package grpcchain assembles the one server-side interceptor order every
// service uses, for unary and streaming calls alike:
//
//	otelgrpc stats handler -> metrics -> request id -> logging -> auth ->
//	validation -> fault injection -> panic recovery -> handler
//
// Metrics and logging sit outside auth so rejected calls are counted and
// logged; recovery sits innermost so a panic becomes codes.Internal that
// the outer layers still see.
package grpcchain

import (
	"context"
	"log/slog"
	"runtime/debug"
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
)

// Options are the parts of the chain; nil parts are left out.
type Options struct {
	Logger  *slog.Logger
	Metrics *metrics.GRPC
	Auth    *auth.Authenticator
	Fault   fault.Injector
}

// Validator is implemented by request messages that can check their own
// shape; a failure becomes codes.InvalidArgument before the handler runs.
type Validator interface {
	Validate() error
}

// ServerOptions returns the stats handler and the chained interceptors.
func ServerOptions(o Options) []grpc.ServerOption {
	var unary []grpc.UnaryServerInterceptor
	var stream []grpc.StreamServerInterceptor
	if o.Metrics != nil {
		unary = append(unary, o.Metrics.Unary())
		stream = append(stream, o.Metrics.Stream())
	}
	unary = append(unary, requestIDUnary, logUnary(o.Logger))
	stream = append(stream, requestIDStream, logStream(o.Logger))
	if o.Auth != nil {
		unary = append(unary, o.Auth.Unary())
		stream = append(stream, o.Auth.Stream())
	}
	unary = append(unary, validateUnary)
	stream = append(stream, validateStream)
	if o.Fault.Enabled() {
		unary = append(unary, o.Fault.Unary())
		stream = append(stream, o.Fault.Stream())
	}
	unary = append(unary, recoverUnary(o.Logger))
	stream = append(stream, recoverStream(o.Logger))
	return []grpc.ServerOption{
		grpc.StatsHandler(otelgrpc.NewServerHandler()),
		grpc.ChainUnaryInterceptor(unary...),
		grpc.ChainStreamInterceptor(stream...),
	}
}

// stream lets an interceptor replace a stream's context.
type stream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stream) Context() context.Context { return s.ctx }

func withRequestID(ctx context.Context) context.Context {
	var id string
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if v := md.Get(requestid.Header); len(v) > 0 {
			id = v[0]
		}
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
// error-level logs mean something is wrong with the service.
func level(c codes.Code) slog.Level {
	switch c {
	case codes.OK, codes.Canceled, codes.InvalidArgument, codes.NotFound, codes.AlreadyExists,
		codes.PermissionDenied, codes.Unauthenticated, codes.FailedPrecondition, codes.Aborted,
		codes.OutOfRange, codes.ResourceExhausted:
		return slog.LevelInfo
	}
	return slog.LevelError
}

func logCall(ctx context.Context, l *slog.Logger, method string, start time.Time, err error) {
	st := status.Convert(err)
	attrs := []slog.Attr{
		slog.String("method", method),
		slog.String("code", st.Code().String()),
		slog.Duration("duration", time.Since(start)),
	}
	if p, ok := auth.PrincipalFrom(ctx); ok {
		attrs = append(attrs, slog.String("subject", p.Subject))
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", st.Message()))
	}
	l.LogAttrs(ctx, level(st.Code()), "grpc call", attrs...)
}

func logUnary(l *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		start := time.Now()
		// The principal is added to a context inside the chain; capture it
		// through a holder so the log line can name the caller.
		h := &holder{}
		resp, err := handler(withHolder(ctx, h), req)
		logCall(h.ctx(ctx), l, info.FullMethod, start, err)
		return resp, err
	}
}

func logStream(l *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		start := time.Now()
		h := &holder{}
		err := handler(srv, &stream{ServerStream: ss, ctx: withHolder(ss.Context(), h)})
		logCall(h.ctx(ss.Context()), l, info.FullMethod, start, err)
		return err
	}
}

func validateUnary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	if v, ok := req.(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, status.Error(codes.InvalidArgument, err.Error())
		}
	}
	remember(ctx)
	return handler(ctx, req)
}

func validateStream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	remember(ss.Context())
	return handler(srv, &validatingStream{ServerStream: ss})
}

// validatingStream validates each message a streaming handler receives.
type validatingStream struct{ grpc.ServerStream }

func (s *validatingStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil {
		return err
	}
	if v, ok := m.(Validator); ok {
		if err := v.Validate(); err != nil {
			return status.Error(codes.InvalidArgument, err.Error())
		}
	}
	return nil
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
