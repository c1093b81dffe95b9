package grpcchain

import (
	"context"
	"errors"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/msctl/msctl/services/kit/auth"
)

// echo is the implementation of echoDesc's one method, /s/M: it runs
// before, sets a header and a trailer and echoes the request.
type echo func()

func (e echo) M(ctx context.Context, in *wrapperspb.StringValue) (*wrapperspb.StringValue, error) {
	e()
	_ = grpc.SetHeader(ctx, metadata.Pairs("x-echo", in.GetValue()))
	_ = grpc.SetTrailer(ctx, metadata.Pairs("x-done", "yes"))
	return wrapperspb.String("echo " + in.GetValue()), nil
}

// echoDesc is written as protoc-gen-go-grpc writes a service descriptor.
var echoDesc = &grpc.ServiceDesc{
	ServiceName: "s",
	HandlerType: (*interface {
		M(context.Context, *wrapperspb.StringValue) (*wrapperspb.StringValue, error)
	})(nil),
	Methods: []grpc.MethodDesc{{MethodName: "M", Handler: func(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
		in := new(wrapperspb.StringValue)
		if err := dec(in); err != nil {
			return nil, err
		}
		h := func(ctx context.Context, req any) (any, error) {
			return srv.(echo).M(ctx, req.(*wrapperspb.StringValue))
		}
		if interceptor == nil {
			return h(ctx, in)
		}
		return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: "/s/M"}, h)
	}}},
	Streams: []grpc.StreamDesc{{StreamName: "S", ServerStreams: true}},
}

// TestInProcessRunsTheChain: a call reaches the handler through the chain
// under its own method name, with the caller's outgoing metadata as
// incoming, and the handler's header and trailer come back; without
// credentials the chain's auth refuses it.
func TestInProcessRunsTheChain(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	pol := auth.Policy{Roles: map[string][]auth.Permission{"r": {"read"}}, Methods: map[string]auth.Permission{"/s/M": "read"}}
	var sawKey []string
	conn := NewInProcess(Options{Logger: log, Auth: auth.New(pol, nil, nil, log)})
	conn.RegisterService(echoDesc, echo(func() {}))
	if err := conn.Invoke(context.Background(), "/s/M", wrapperspb.String("a"), new(wrapperspb.StringValue)); status.Code(err) != codes.Unauthenticated {
		t.Fatalf("no credentials: %v, want Unauthenticated", err)
	}

	conn = NewInProcess(Options{Logger: log})
	conn.RegisterService(echoDesc, echo(func() {}))
	conn.chain = func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		sawKey = metadata.ValueFromIncomingContext(ctx, "x-api-key")
		if info.FullMethod != "/s/M" {
			t.Errorf("chain saw method %q", info.FullMethod)
		}
		return h(ctx, req)
	}
	var header, trailer metadata.MD
	out := new(wrapperspb.StringValue)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", "k")
	if err := conn.Invoke(ctx, "/s/M", wrapperspb.String("a"), out, grpc.Header(&header), grpc.Trailer(&trailer)); err != nil {
		t.Fatal(err)
	}
	if out.GetValue() != "echo a" || len(sawKey) != 1 || sawKey[0] != "k" ||
		header.Get("x-echo")[0] != "a" || trailer.Get("x-done")[0] != "yes" {
		t.Fatalf("reply %q, key %v, header %v, trailer %v", out.GetValue(), sawKey, header, trailer)
	}
	if err := conn.Invoke(ctx, "/s/Other", wrapperspb.String("a"), out); status.Code(err) != codes.Unimplemented {
		t.Fatalf("unknown method: %v", err)
	}
	if _, err := conn.NewStream(ctx, &echoDesc.Streams[0], "/s/S"); status.Code(err) != codes.Unimplemented {
		t.Fatalf("stream: %v", err)
	}
}

// TestStartingRefusesCallsButHealth: while Starting answers an error,
// calls get Unavailable with its text and never reach the handler; health
// checks pass; afterwards calls run.
func TestStartingRefusesCallsButHealth(t *testing.T) {
	var started bool
	ran := false
	chain := unaryChain(Options{Logger: slog.New(slog.DiscardHandler), Starting: func() error {
		if started {
			return nil
		}
		return errors.New("database not ready yet (starting)")
	}})
	call := func(method string) error {
		ran = false
		_, err := chain(context.Background(), "req", &grpc.UnaryServerInfo{FullMethod: method},
			func(context.Context, any) (any, error) { ran = true; return "ok", nil })
		return err
	}
	if err := call("/s/M"); status.Code(err) != codes.Unavailable || status.Convert(err).Message() != "database not ready yet (starting)" || ran {
		t.Fatalf("while starting: %v (handler ran: %v)", err, ran)
	}
	if err := call("/grpc.health.v1.Health/Check"); err != nil || !ran {
		t.Fatalf("health check while starting: %v (handler ran: %v)", err, ran)
	}
	started = true
	if err := call("/s/M"); err != nil || !ran {
		t.Fatalf("once started: %v (handler ran: %v)", err, ran)
	}
}
