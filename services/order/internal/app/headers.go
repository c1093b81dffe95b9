package app

import (
	"net/http"

	"github.com/msctl/msctl/services/kit/idempotency"
	"github.com/msctl/msctl/services/order/internal/orderapi"
)

// responseHeaders gives HTTP clients the experiment variant and the
// idempotency key used under the names gRPC clients see (the latter as
// Idempotency-Key): the gateway forwards gRPC response headers as
// Grpc-Metadata-<name>, and the kit's mux is shared by every service.
func responseHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(&renaming{ResponseWriter: w}, r)
	})
}

// renamed maps the gateway's name of a gRPC response header to the HTTP
// one.
var renamed = map[string]string{
	http.CanonicalHeaderKey("Grpc-Metadata-" + orderapi.ExperimentHeader): orderapi.ExperimentHeader,
	http.CanonicalHeaderKey("Grpc-Metadata-" + idempotency.MetadataKey):   idempotency.Header,
}

type renaming struct {
	http.ResponseWriter
	written bool
}

func (r *renaming) rename() {
	if r.written {
		return
	}
	r.written = true
	h := r.Header()
	for from, to := range renamed {
		if v := h.Get(from); v != "" {
			h.Del(from)
			h.Set(to, v)
		}
	}
}

func (r *renaming) WriteHeader(code int) { r.rename(); r.ResponseWriter.WriteHeader(code) }

func (r *renaming) Write(b []byte) (int, error) { r.rename(); return r.ResponseWriter.Write(b) }

// Unwrap lets http.ResponseController reach the underlying writer.
func (r *renaming) Unwrap() http.ResponseWriter { return r.ResponseWriter }
