package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// created answers a successful Create method with 201 Created and the new
// resource's Location: the route's path and the response's id (or name).
func created(ctx context.Context, w http.ResponseWriter, resp proto.Message) error {
	method, ok := runtime.RPCMethod(ctx)
	if !ok || !strings.HasPrefix(method[strings.LastIndex(method, "/")+1:], "Create") {
		return nil
	}
	if pattern, ok := runtime.HTTPPathPattern(ctx); ok && !strings.Contains(pattern, "{") {
		if id := idOf(resp); id != "" {
			w.Header().Set("Location", strings.TrimSuffix(pattern, "/")+"/"+url.PathEscape(id))
		}
	}
	w.WriteHeader(http.StatusCreated)
	return nil
}

// idOf is m's string field id, or else name; "" if it has neither.
func idOf(m proto.Message) string {
	r := m.ProtoReflect()
	for _, name := range []protoreflect.Name{"id", "name"} {
		if f := r.Descriptor().Fields().ByName(name); f != nil && f.Kind() == protoreflect.StringKind {
			return r.Get(f).String()
		}
	}
	return ""
}

// pathMatchesBody refuses a request whose JSON body names a path
// parameter's field (by its proto or JSON name) with another value:
// grpc-gateway would let the path silently win, and the caller would
// change a resource other than the one its body describes.
func pathMatchesBody(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if len(params) == 0 || r.Body == nil || r.Body == http.NoBody {
			next(w, r, params)
			return
		}
		raw, err := io.ReadAll(r.Body)
		if err != nil {
			// The handler's own read meets the error (a body too large,
			// say) where it would have.
			r.Body = io.NopCloser(io.MultiReader(bytes.NewReader(raw), failing{err}))
			next(w, r, params)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(raw))
		var body map[string]json.RawMessage
		if json.Unmarshal(raw, &body) == nil {
			for param, inPath := range params {
				if msg := disagreement(body, param, inPath); msg != "" {
					writeError(r.Context(), nil, nil, w, r, status.Error(codes.InvalidArgument, msg))
					return
				}
			}
		}
		next(w, r, params)
	}
}

// disagreement says how body's value of the path parameter param differs
// from inPath, or "" if it agrees or is absent.
func disagreement(body map[string]json.RawMessage, param, inPath string) string {
	for _, key := range []string{param, jsonName(param)} {
		v, ok := body[key]
		if !ok {
			continue
		}
		var s string
		if json.Unmarshal(v, &s) != nil || s != inPath {
			return fmt.Sprintf("%s: the body says %s but the path says %q; send the same, or leave it out of the body", param, v, inPath)
		}
	}
	return ""
}

// jsonName is protoc's JSON name of a field: lowerCamelCase.
func jsonName(field string) string {
	var b strings.Builder
	upper := false
	for _, c := range field {
		switch {
		case c == '_':
			upper = true
		case upper && c >= 'a' && c <= 'z':
			b.WriteRune(c - 'a' + 'A')
			upper = false
		default:
			b.WriteRune(c)
			upper = false
		}
	}
	return b.String()
}

// failing is a reader that fails with its error.
type failing struct{ err error }

func (f failing) Read([]byte) (int, error) { return 0, f.err }
