package grpcchain

import (
	"context"
	"strings"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// InProcess is a connection to services in the same process: each unary
// call runs the registered implementation behind the same chain as the
// gRPC server, as if it had come over the network, but without HTTP/2
// and protobuf on loopback. The HTTP gateway's RegisterXHandlerClient
// uses it, so every HTTP request gets the same metrics, request id,
// logging, auth, validation and fault injection as a gRPC call, with no
// per-service code. Streams are not served in process.
type InProcess struct {
	chain   grpc.UnaryServerInterceptor
	methods map[string]inProcessMethod
}

type inProcessMethod struct {
	srv     any
	handler grpc.MethodHandler
}

var (
	_ grpc.ClientConnInterface = (*InProcess)(nil)
	_ grpc.ServiceRegistrar    = (*InProcess)(nil)
)

// NewInProcess returns a connection whose calls run behind the unary
// chain of ServerOptions(o): build both from the same Options (one
// Metrics, one Auth), so the two paths share counters and rate limits.
func NewInProcess(o Options) *InProcess {
	return &InProcess{chain: unaryChain(o), methods: map[string]inProcessMethod{}}
}

// RegisterService makes impl's unary methods callable; like a gRPC
// server's, it must be called before the first call.
func (p *InProcess) RegisterService(desc *grpc.ServiceDesc, impl any) {
	for _, m := range desc.Methods {
		p.methods["/"+desc.ServiceName+"/"+m.MethodName] = inProcessMethod{srv: impl, handler: m.Handler}
	}
}

// Invoke runs method with args and fills reply. The caller's outgoing
// metadata (credentials, request id, forwarded-for) becomes the incoming
// metadata the chain reads, and headers and trailers the handler sets
// come back through grpc.Header and grpc.Trailer call options.
func (p *InProcess) Invoke(ctx context.Context, method string, args, reply any, opts ...grpc.CallOption) error {
	m, ok := p.methods[method]
	if !ok {
		return status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
	md, _ := metadata.FromOutgoingContext(ctx)
	st := &transportStream{method: method}
	ctx = grpc.NewContextWithServerTransportStream(metadata.NewIncomingContext(ctx, md), st)
	in, ok := args.(proto.Message)
	if !ok {
		return status.Errorf(codes.Internal, "%s: request %T is not a protobuf message", method, args)
	}
	resp, err := m.handler(m.srv, ctx, func(v any) error {
		proto.Merge(v.(proto.Message), in)
		return nil
	}, p.chain)
	st.deliver(opts)
	if err != nil {
		return err
	}
	out, ok := resp.(proto.Message)
	if !ok || out == nil {
		return status.Errorf(codes.Internal, "%s: the chain returned no response", method)
	}
	proto.Merge(reply.(proto.Message), out)
	return nil
}

// NewStream refuses: streams go over the gRPC port.
func (p *InProcess) NewStream(_ context.Context, _ *grpc.StreamDesc, method string, _ ...grpc.CallOption) (grpc.ClientStream, error) {
	return nil, status.Errorf(codes.Unimplemented, "%s: streams are not served over HTTP; call the gRPC port", strings.TrimPrefix(method, "/"))
}

// transportStream collects what a handler sets with grpc.SetHeader,
// SendHeader and SetTrailer during an in-process call.
type transportStream struct {
	method  string
	mu      sync.Mutex
	header  metadata.MD
	trailer metadata.MD
}

func (s *transportStream) Method() string { return s.method }

func (s *transportStream) SetHeader(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.header = metadata.Join(s.header, md)
	return nil
}

func (s *transportStream) SendHeader(md metadata.MD) error { return s.SetHeader(md) }

func (s *transportStream) SetTrailer(md metadata.MD) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.trailer = metadata.Join(s.trailer, md)
	return nil
}

// deliver hands the collected metadata to the caller's call options.
func (s *transportStream) deliver(opts []grpc.CallOption) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, o := range opts {
		switch o := o.(type) {
		case grpc.HeaderCallOption:
			*o.HeaderAddr = s.header
		case grpc.TrailerCallOption:
			*o.TrailerAddr = s.trailer
		}
	}
}
