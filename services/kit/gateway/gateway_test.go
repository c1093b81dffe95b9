package gateway

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/typepb"
)

// testServer serves a mux with routes that decode the way generated
// handlers do: body through the mux's marshaler, query through
// PopulateQueryParameters, errors flattened with %v into INVALID_ARGUMENT.
func testServer(t *testing.T) *httptest.Server {
	t.Helper()
	mux := NewMux()
	fail := func(w http.ResponseWriter, r *http.Request, err error) {
		_, out := runtime.MarshalerForRequest(mux, r)
		runtime.HTTPError(r.Context(), mux, out, w, r, status.Errorf(codes.InvalidArgument, "%v", err))
	}
	ok := func(w http.ResponseWriter, _ *http.Request, _ map[string]string) { w.WriteHeader(http.StatusOK) }
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	must(mux.HandlePath(http.MethodGet, "/v1/things/{name}", ok))
	must(mux.HandlePath(http.MethodPatch, "/v1/things/{name}", ok))
	// A generated handler for CreateThing and GetThing, answering name "x".
	answer := func(method string) runtime.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
			_, out := runtime.MarshalerForRequest(mux, r)
			ctx, err := runtime.AnnotateIncomingContext(r.Context(), mux, r, method, runtime.WithHTTPPathPattern("/v1/made"))
			if err != nil {
				t.Error(err)
			}
			runtime.ForwardResponseMessage(ctx, mux, out, w, r, &typepb.Field{Name: "x"}, mux.GetForwardResponseOptions()...)
		}
	}
	must(mux.HandlePath(http.MethodPost, "/v1/made", answer("/test.v1.Things/CreateThing")))
	must(mux.HandlePath(http.MethodGet, "/v1/made", answer("/test.v1.Things/GetThing")))
	must(mux.HandlePath(http.MethodDelete, "/v1/things/{name}", ok))
	must(mux.HandlePath(http.MethodPost, "/v1/things", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		in, _ := runtime.MarshalerForRequest(mux, r)
		var f typepb.Field
		if err := in.NewDecoder(http.MaxBytesReader(w, r.Body, 64)).Decode(&f); err != nil && !errors.Is(err, io.EOF) {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	must(mux.HandlePath(http.MethodGet, "/v1/things", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		if err := r.ParseForm(); err != nil {
			fail(w, r, err)
			return
		}
		if err := runtime.PopulateQueryParameters(&typepb.Field{}, r.Form, &utilities.DoubleArray{Encoding: map[string]int{}}); err != nil {
			fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	must(mux.HandlePath(http.MethodGet, "/v1/limited", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		_, out := runtime.MarshalerForRequest(mux, r)
		runtime.HTTPError(r.Context(), mux, out, w, r, status.Error(codes.ResourceExhausted, "API key rate limit exceeded"))
	}))
	must(mux.HandlePath(http.MethodGet, "/v1/joined", func(w http.ResponseWriter, r *http.Request, _ map[string]string) {
		fail(w, r, errors.Join(errors.New("a: is required"), errors.New("b: is required")))
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func TestErrors(t *testing.T) {
	srv := testServer(t)
	cases := []struct {
		name, method, path, body string
		code                     int
		status, msg, allow       string
	}{
		{"wrong method", "PUT", "/v1/things/x", "", 405, "METHOD_NOT_ALLOWED", "PUT is not allowed on /v1/things/x; allowed: GET, PATCH, DELETE", "GET, PATCH, DELETE"},
		{"wrong method on a collection", "DELETE", "/v1/things", "", 405, "METHOD_NOT_ALLOWED", "allowed: GET, POST", "GET, POST"},
		{"no route", "GET", "/v2/things", "", 404, "NOT_FOUND", "no route for GET /v2/things", ""},
		{"right method still served", "DELETE", "/v1/things/x", "", 200, "", "", ""},
		{"empty body is an empty message", "POST", "/v1/things", "", 200, "", "", ""},
		{"truncated body", "POST", "/v1/things", `{"name":`, 400, "INVALID_ARGUMENT", "request body is not valid JSON: unexpected end of input", ""},
		{"not JSON", "POST", "/v1/things", `undefined`, 400, "INVALID_ARGUMENT", "request body is not valid JSON: invalid character 'u' looking for beginning of value (at byte 1)", ""},
		{"fraction for an integer", "POST", "/v1/things", `{"number":1.5}`, 400, "INVALID_ARGUMENT", "number: invalid value 1.5 for an int32 field", ""},
		{"string for an integer", "POST", "/v1/things", `{"number":"x"}`, 400, "INVALID_ARGUMENT", `number: invalid value "x" for an int32 field`, ""},
		{"unknown field", "POST", "/v1/things", `{"isAdmin":true}`, 400, "INVALID_ARGUMENT", `request body: unknown field "isAdmin"`, ""},
		{"too large", "POST", "/v1/things", `{"name":"` + strings.Repeat("x", 100) + `"}`, 413, "PAYLOAD_TOO_LARGE", "request body too large (limit 64 bytes)", ""},
		{"query not an integer", "GET", "/v1/things?number=abc", "", 400, "INVALID_ARGUMENT", `number: "abc" is not an integer`, ""},
		{"query out of range", "GET", "/v1/things?number=99999999999", "", 400, "INVALID_ARGUMENT", `number: "99999999999" is out of range`, ""},
		{"query bool", "GET", "/v1/things?packed=maybe", "", 400, "INVALID_ARGUMENT", `packed: "maybe" is not a boolean (true or false)`, ""},
		{"query enum", "GET", "/v1/things?kind=NOPE", "", 400, "INVALID_ARGUMENT", `kind: "NOPE" is not a valid value`, ""},
		{"several problems on one line", "GET", "/v1/joined", "", 400, "INVALID_ARGUMENT", "a: is required; b: is required", ""},
		{"rate limited", "GET", "/v1/limited", "", 429, "RESOURCE_EXHAUSTED", "rate limit exceeded", ""},
		{"body agrees with the path", "PATCH", "/v1/things/x", `{"name":"x","number":1}`, 200, "", "", ""},
		{"body contradicts the path", "PATCH", "/v1/things/x", `{"name":"y"}`, 400, "INVALID_ARGUMENT", `name: the body says "y" but the path says "x"`, ""},
		{"created", "POST", "/v1/made", "", 201, "", "", ""},
		{"not a create", "GET", "/v1/made", "", 200, "", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.code)
			}
			if got := resp.Header.Get("Allow"); got != tc.allow {
				t.Errorf("Allow %q, want %q", got, tc.allow)
			}
			if got, want := resp.Header.Get("Retry-After"), map[bool]string{true: "1"}[tc.code == 429]; got != want {
				t.Errorf("Retry-After %q, want %q", got, want)
			}
			if got, want := resp.Header.Get("Location"), map[bool]string{true: "/v1/made/x"}[tc.code == 201]; got != want {
				t.Errorf("Location %q, want %q", got, want)
			}
			if tc.code == 200 || tc.code == 201 {
				return
			}
			var b Body
			if err := json.NewDecoder(resp.Body).Decode(&b); err != nil {
				t.Fatal(err)
			}
			if b.Error.Code != tc.code || b.Error.Status != tc.status {
				t.Errorf("body code %d status %s, want %d %s", b.Error.Code, b.Error.Status, tc.code, tc.status)
			}
			if !strings.Contains(b.Error.Message, tc.msg) || strings.ContainsAny(b.Error.Message, "\r\n") {
				t.Errorf("message %q, want one line containing %q", b.Error.Message, tc.msg)
			}
		})
	}
}
