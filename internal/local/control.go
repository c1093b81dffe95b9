package local

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"

	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/routes"
)

// The control API, on loopback, each request carrying the token from the
// run directory's control.token (mode 0600) as a bearer token:
//
//	GET    /v1/status                      Status
//	PUT    /v1/services/{name}/traffic     routes.Traffic
//	GET    /v1/services/{name}/stable      ProcessSpec
//	PUT    /v1/services/{name}/canary      ProcessSpec; answers once ready
//	DELETE /v1/services/{name}/canary
//	POST   /v1/services/{name}/promote
//
// Errors are {"error": "...", "badInput": bool}.
func (s *Supervisor) controlAPI() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) { reply(w, s.Status(), nil) })
	mux.HandleFunc("PUT /v1/services/{name}/traffic", func(w http.ResponseWriter, r *http.Request) {
		var t routes.Traffic
		if err := decode(r, &t); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, s.SetTraffic(r.PathValue("name"), t))
	})
	mux.HandleFunc("GET /v1/services/{name}/stable", func(w http.ResponseWriter, r *http.Request) {
		spec, err := s.StableSpec(r.PathValue("name"))
		reply(w, spec, err)
	})
	mux.HandleFunc("PUT /v1/services/{name}/canary", func(w http.ResponseWriter, r *http.Request) {
		var spec ProcessSpec
		if err := decode(r, &spec); err != nil {
			reply(w, nil, err)
			return
		}
		reply(w, nil, s.StartCanary(r.Context(), r.PathValue("name"), spec))
	})
	mux.HandleFunc("DELETE /v1/services/{name}/canary", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, s.StopCanary(r.PathValue("name")))
	})
	mux.HandleFunc("POST /v1/services/{name}/promote", func(w http.ResponseWriter, r *http.Request) {
		reply(w, nil, s.Promote(r.PathValue("name")))
	})
	want := []byte("Bearer " + s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), want) != 1 {
			http.Error(w, `{"error":"missing or wrong control token"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

type apiError struct {
	Error    string `json:"error"`
	BadInput bool   `json:"badInput,omitempty"`
}

func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errkind.BadInputf("request body: %w", err)
	}
	return nil
}

func reply(w http.ResponseWriter, v any, err error) {
	w.Header().Set("Content-Type", "application/json")
	if err != nil {
		code := http.StatusInternalServerError
		bad := errkind.Of(err) == errkind.BadInput
		if bad {
			code = http.StatusBadRequest
		}
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(apiError{Error: err.Error(), BadInput: bad})
		return
	}
	if v == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	_ = json.NewEncoder(w).Encode(v)
}
