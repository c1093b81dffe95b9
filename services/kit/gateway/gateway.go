// Package gateway configures grpc-gateway the same way for every service:
// strict JSON (unknown fields are an error), credentials and request ids
// forwarded as gRPC metadata, 201 Created with a Location for a Create
// method, a body that contradicts the path refused (400), and errors as a
// JSON body with the HTTP
// status that matches the gRPC code (405 with an Allow header for a known
// path under another method) and a one-line message that says what is
// wrong without the parsers' internals.
//
// Every HTTP request must pass the full grpcchain once: a service
// registers its generated RegisterXHandlerClient on the kit's in-process
// connection (grpcchain.InProcess, given by host's Gateway.Register),
// which runs the chain without a second hop through HTTP/2 and protobuf.
package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/textproto"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/msctl/msctl/services/kit/auth"
	"github.com/msctl/msctl/services/kit/idempotency"
	"github.com/msctl/msctl/services/kit/requestid"
	"github.com/msctl/msctl/services/kit/validation"
)

// NewMux returns a grpc-gateway mux with the house settings.
func NewMux() *runtime.ServeMux {
	return runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &bodyMarshaler{JSONPb: &runtime.JSONPb{
			MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true},
			// A misspelt field silently ignored is a change the caller did
			// not get; refuse it instead.
			UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: false},
		}}),
		runtime.WithIncomingHeaderMatcher(headers),
		runtime.WithErrorHandler(writeError),
		runtime.WithRoutingErrorHandler(routingError),
		// allowProbe outermost, so a probe never reaches a handler.
		runtime.WithMiddlewares(allowProbe, pathMatchesBody),
		runtime.WithForwardResponseOption(created),
	)
}

// headers forwards the API key, request id and idempotency key under
// their gRPC names; the Authorization header is forwarded by grpc-gateway
// itself.
func headers(key string) (string, bool) {
	switch textproto.CanonicalMIMEHeaderKey(key) {
	case idempotency.Header:
		return idempotency.MetadataKey, true
	case idempotency.GeneratedHeader:
		return idempotency.GeneratedMetadataKey, true
	case textproto.CanonicalMIMEHeaderKey(auth.APIKeyKey):
		return auth.APIKeyKey, true
	case textproto.CanonicalMIMEHeaderKey(requestid.Header):
		return requestid.Header, true
	}
	return runtime.DefaultHeaderMatcher(key)
}

// Body is the JSON error document every HTTP error carries.
type Body struct {
	Error struct {
		Code      int    `json:"code"`
		Status    string `json:"status"`
		Message   string `json:"message"`
		RequestID string `json:"request_id,omitempty"`
	} `json:"error"`
}

func writeError(ctx context.Context, _ *runtime.ServeMux, _ runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	if probing(r) {
		return
	}
	// The mux itself answers some requests with an HTTP status that has no
	// gRPC code (405, or 400 for a malformed path escape).
	httpCode := 0
	var hs *runtime.HTTPStatusError
	if errors.As(err, &hs) {
		httpCode, err = hs.HTTPStatus, hs.Err
	}
	st := status.Convert(err)
	code := runtime.HTTPStatusFromCode(st.Code())
	msg := validation.OneLine(st.Message())
	if st.Code() == codes.InvalidArgument {
		msg = readable(msg)
		if strings.Contains(msg, "request body too large") {
			httpCode = http.StatusRequestEntityTooLarge
		}
	}
	switch st.Code() {
	case codes.Unauthenticated:
		w.Header().Set("WWW-Authenticate", `Bearer realm="msctl"`)
	case codes.ResourceExhausted:
		// API keys refill at least one call a second.
		w.Header().Set("Retry-After", "1")
	}
	var b Body
	b.Error.Status = strings.ToUpper(toSnake(st.Code().String()))
	switch httpCode {
	case 0:
	case http.StatusRequestEntityTooLarge:
		code, b.Error.Status = httpCode, "PAYLOAD_TOO_LARGE"
	case http.StatusMethodNotAllowed:
		code, b.Error.Status = httpCode, "METHOD_NOT_ALLOWED"
	case http.StatusBadRequest:
		code, b.Error.Status = httpCode, "INVALID_ARGUMENT"
	default:
		code = httpCode
	}
	b.Error.Code = code
	b.Error.Message = msg
	b.Error.RequestID = requestid.From(ctx)
	if b.Error.RequestID == "" {
		b.Error.RequestID = r.Header.Get(requestid.Header)
	}
	w.Header().Del("Trailer")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(b)
}

func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	if probing(r) {
		return
	}
	var err error
	switch httpStatus {
	case http.StatusMethodNotAllowed:
		allow := allowedMethods(mux, r)
		msg := r.Method + " is not allowed on " + r.URL.Path
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			msg += "; allowed: " + strings.Join(allow, ", ")
		}
		err = &runtime.HTTPStatusError{HTTPStatus: http.StatusMethodNotAllowed, Err: status.Error(codes.Unimplemented, msg)}
	case http.StatusNotFound:
		err = status.Errorf(codes.NotFound, "no route for %s %s", r.Method, r.URL.Path)
	default:
		err = status.Error(codes.InvalidArgument, http.StatusText(httpStatus))
	}
	writeError(ctx, mux, m, w, r, err)
}

// toSnake turns "InvalidArgument" into "Invalid_Argument".
func toSnake(s string) string {
	var b strings.Builder
	for i, c := range s {
		if i > 0 && c >= 'A' && c <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteRune(c)
	}
	return b.String()
}
