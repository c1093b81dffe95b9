package gateway

import (
	"context"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
)

// grpc-gateway tells the routing error handler that a path exists under
// another method but not which methods, and keeps its routes private. To
// fill the Allow header of a 405, routingError replays the request under
// each method with a probe mark in its context: allowProbe, the mux's
// outermost middleware, records a match and stops before any handler
// runs, and the error handlers ignore probes.

type probeKey struct{}

// candidateMethods are the methods grpc-gateway routes from HTTP rules.
var candidateMethods = []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete}

func allowProbe(next runtime.HandlerFunc) runtime.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request, params map[string]string) {
		if hit, ok := r.Context().Value(probeKey{}).(*bool); ok {
			*hit = true
			return
		}
		next(w, r, params)
	}
}

func probing(r *http.Request) bool {
	_, ok := r.Context().Value(probeKey{}).(*bool)
	return ok
}

// allowedMethods lists the methods the mux routes for r's path.
func allowedMethods(mux *runtime.ServeMux, r *http.Request) []string {
	var allow []string
	for _, m := range candidateMethods {
		if m == r.Method {
			continue
		}
		hit := false
		u := *r.URL
		// No headers: a form POST or X-HTTP-Method-Override would make the
		// mux fall back to another method.
		probe := (&http.Request{Method: m, URL: &u, Header: http.Header{}, Host: r.Host, Body: http.NoBody}).
			WithContext(context.WithValue(r.Context(), probeKey{}, &hit))
		mux.ServeHTTP(discard{}, probe)
		if hit {
			allow = append(allow, m)
		}
	}
	return allow
}

// discard is a ResponseWriter for probes; nothing is written to it, but
// the mux may set headers on the way.
type discard struct{}

func (discard) Header() http.Header         { return http.Header{} }
func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) WriteHeader(int)             {}
