package render

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/routes"
	networkingapi "istio.io/api/networking/v1"
	securityapi "istio.io/api/security/v1"
)

// project parses a small project file, defaults and all; extra is appended
// to the top level.
func project(t *testing.T, extra string) *config.Project {
	t.Helper()
	src := `apiVersion: msctl.dev/v1alpha1
kind: Project
name: shop
services:
  - name: user
    routes: [/api/v1/users]
  - name: payment
  - name: order
    routes: [/api/v1/orders, /api/v2/orders]
    timeout: 20s
    calls: [user, payment]
` + extra
	l, err := config.Parse("msctl.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	return l.Project
}

const gatewayHosts = "gateway:\n  hosts: [shop.example.com]\n"

// Every route of a service ends at the service's timeout, no try is cut
// shorter, and only requests that never reached the service are retried.
func TestRouteTimeouts(t *testing.T) {
	p := project(t, gatewayHosts)
	tests := []struct {
		service string
		want    time.Duration
	}{
		{"user", 10 * time.Second},
		{"payment", 10 * time.Second},
		{"order", 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.service, func(t *testing.T) {
			vs := mustRoute(t, p, tt.service, routes.Traffic{Weight: 25}).VirtualService()
			if len(vs.Spec.Http) == 0 {
				t.Fatal("no routes")
			}
			for _, r := range vs.Spec.Http {
				if got := r.Timeout.AsDuration(); got != tt.want {
					t.Errorf("route %s: timeout %s, want %s", r.Name, got, tt.want)
				}
				if r.Retries.PerTryTimeout != nil {
					t.Errorf("route %s: perTryTimeout %s would cut a try short of the route's timeout", r.Name, r.Retries.PerTryTimeout.AsDuration())
				}
				if on := r.Retries.RetryOn; on != "connect-failure,refused-stream,reset-before-request" {
					t.Errorf("route %s: retryOn %q retries more than requests that never reached the service", r.Name, on)
				}
			}
		})
	}
}

// The pin to the canary matches inside the mesh, and at the gateway only on
// the service's own routes and only when the project allows the header
// from outside; otherwise the gateway removes the header.
func TestPinScoping(t *testing.T) {
	header := map[string]*networkingapi.StringMatch{routes.CanaryHeader: {MatchType: &networkingapi.StringMatch_Exact{Exact: "true"}}}
	tests := []struct {
		name    string
		extra   string
		service string
		weight  int
		// pin lists the pin route's matches as gateway+prefix; nil for no
		// pin route.
		pin []string
		// strip says the gateway route removes the header; "" when there
		// is no gateway route.
		strip string
	}{
		{"no canary, header not allowed", gatewayHosts, "order", 0, nil, "removes"},
		{"canary, header not allowed", gatewayHosts, "order", 25, []string{"mesh"}, "removes"},
		{"canary, header allowed", gatewayHosts + "  allowCanaryHeader: true\n", "order", 25,
			[]string{"mesh", "shop-gateway /api/v1/orders", "shop-gateway /api/v2/orders"}, "keeps"},
		{"no canary, header allowed", gatewayHosts + "  allowCanaryHeader: true\n", "order", 0, nil, "keeps"},
		{"mesh-only service", gatewayHosts + "  allowCanaryHeader: true\n", "payment", 50, []string{"mesh"}, ""},
		{"no gateway hosts", "", "order", 25, []string{"mesh"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(t, tt.extra)
			vs := mustRoute(t, p, tt.service, routes.Traffic{Weight: tt.weight}).VirtualService()
			var pin []string
			strip := ""
			for _, r := range vs.Spec.Http {
				switch r.Name {
				case routes.PinRoute:
					pin = []string{}
					for _, m := range r.Match {
						if len(m.Headers) != 1 || m.Headers[routes.CanaryHeader].GetExact() != header[routes.CanaryHeader].GetExact() {
							t.Errorf("pin match %v does not require %s: true", m, routes.CanaryHeader)
						}
						pin = append(pin, strings.TrimSpace(strings.Join(m.Gateways, ",")+" "+m.GetUri().GetPrefix()))
					}
					if d := r.Route; len(d) != 1 || d[0].Destination.Host != mustRoute(t, p, tt.service, routes.Traffic{}).CanaryHost() || d[0].Destination.Subset != "" {
						t.Errorf("pin routes to %v, want the canary's Service only", d)
					}
				case "gateway":
					strip = "keeps"
					if slices.Contains(r.GetHeaders().GetRequest().GetRemove(), routes.CanaryHeader) {
						strip = "removes"
					}
				}
			}
			if !slices.Equal(pin, tt.pin) {
				t.Errorf("pin matches %q, want %q", pin, tt.pin)
			}
			if strip != tt.strip {
				t.Errorf("gateway route %q the header, want %q", strip, tt.strip)
			}
		})
	}
}

// Who may call a service: rules as "from -> to", one per rule.
func TestAuthorizationRules(t *testing.T) {
	const (
		gw      = "principals=" + gatewayPrincipal
		api     = "-> ports=8080,9090"
		metrics = "-> ports=8081 GET /metrics"
		auth    = "auth:\n  issuer: https://auth.example.com\n  jwksUri: https://auth.example.com/jwks.json\n  audiences: [shop]\n"
		mtls    = "prometheus:\n  scrape: mtls\n"
	)
	tests := []struct {
		name    string
		extra   string
		service string
		want    []string
	}{
		{"exposed, no auth", gatewayHosts, "user", []string{
			metrics, gw + " " + api, "principals=cluster.local/ns/shop/sa/order " + api}},
		{"exposed, auth: the gateway's requests need a token", gatewayHosts + auth, "user", []string{
			metrics, gw + " requestPrincipals=* " + api, "principals=cluster.local/ns/shop/sa/order " + api}},
		{"exposed, no callers", gatewayHosts + auth, "order", []string{
			metrics, gw + " requestPrincipals=* " + api}},
		{"mesh only, auth: callers need no token", gatewayHosts + auth, "payment", []string{
			metrics, "principals=cluster.local/ns/shop/sa/order " + api}},
		{"mTLS scrapes: /metrics for Prometheus's namespace only", gatewayHosts + mtls, "payment", []string{
			"namespaces=istio-system " + metrics, "principals=cluster.local/ns/shop/sa/order " + api}},
		{"no gateway hosts: not exposed", auth, "order", []string{metrics}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(t, tt.extra)
			ap := authorizationPolicy(p, p.Service(tt.service))
			if ap.Spec.Action != securityapi.AuthorizationPolicy_ALLOW {
				t.Errorf("action %s, want ALLOW", ap.Spec.Action)
			}
			var got []string
			for _, r := range ap.Spec.Rules {
				got = append(got, describeRule(r))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("rules:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

func describeRule(r *securityapi.Rule) string {
	var parts []string
	for _, f := range r.From {
		s := f.Source
		for _, field := range []struct {
			name   string
			values []string
		}{{"principals", s.Principals}, {"requestPrincipals", s.RequestPrincipals}, {"namespaces", s.Namespaces}} {
			if len(field.values) > 0 {
				parts = append(parts, field.name+"="+strings.Join(field.values, ","))
			}
		}
	}
	for _, to := range r.To {
		op := to.Operation
		parts = append(parts, strings.TrimSpace(fmt.Sprintf("-> ports=%s %s %s", strings.Join(op.Ports, ","), strings.Join(op.Methods, ","), strings.Join(op.Paths, ","))))
	}
	return strings.Join(parts, " ")
}

// A Prometheus without a sidecar scrapes the admin port in plaintext, and
// only that port leaves STRICT mTLS; one that scrapes with mTLS gets no
// exception.
func TestMetricsPeerAuthentication(t *testing.T) {
	tests := []struct {
		name  string
		extra string
		want  string // "" for no object
	}{
		{"plaintext by default", "", "app=user STRICT 8081=PERMISSIVE"},
		{"mtls", "prometheus:\n  scrape: mtls\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(t, tt.extra)
			pa := metricsPeerAuthentication(p, p.Service("user"))
			got := ""
			if pa != nil {
				got = fmt.Sprintf("app=%s %s", pa.Spec.Selector.MatchLabels["app"], pa.Spec.Mtls.Mode)
				for port, m := range pa.Spec.PortLevelMtls {
					got += fmt.Sprintf(" %d=%s", port, m.Mode)
				}
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	p := project(t, "")
	p.Service("user").Ports.Admin = 9100
	if pa := metricsPeerAuthentication(p, p.Service("user")); pa.Spec.PortLevelMtls[9100] == nil {
		t.Errorf("the exception is not on the admin port 9100: %v", pa.Spec.PortLevelMtls)
	}
}

// While a canary runs, its routes come in order: the pin, the A/B match,
// then the split; the match applies in the mesh and on the service's own
// gateway routes, and the split mirrors to the canary.
func TestCanaryTrafficRoutes(t *testing.T) {
	beta := &config.Match{Headers: map[string]config.StringMatch{"x-beta": {Exact: "1"}}, Cookie: "canary=always"}
	tests := []struct {
		name    string
		extra   string
		service string
		traffic routes.Traffic
		// routes are the routes' names, in order.
		routes []string
		// match lists the match route's matches as gateway+prefix.
		match []string
		// strip says whether the match route removes routes.CanaryHeader.
		strip bool
		// mirror is the split routes' mirror percentage; 0 for none.
		mirror float64
	}{
		{"no canary", gatewayHosts, "order", routes.Traffic{}, []string{"gateway", "mesh"}, nil, false, 0},
		{"match alone starts the pin", gatewayHosts, "order", routes.Traffic{Match: beta},
			[]string{routes.PinRoute, routes.MatchRoute, "gateway", "mesh"},
			[]string{"mesh", "shop-gateway /api/v1/orders", "shop-gateway /api/v2/orders"}, true, 0},
		{"match, header allowed at the edge", gatewayHosts + "  allowCanaryHeader: true\n", "order", routes.Traffic{Match: beta},
			[]string{routes.PinRoute, routes.MatchRoute, "gateway", "mesh"},
			[]string{"mesh", "shop-gateway /api/v1/orders", "shop-gateway /api/v2/orders"}, false, 0},
		{"match on a mesh-only service", gatewayHosts, "payment", routes.Traffic{Match: beta},
			[]string{routes.PinRoute, routes.MatchRoute, "mesh"}, []string{"mesh"}, false, 0},
		{"match with no gateway hosts", "", "order", routes.Traffic{Match: beta},
			[]string{routes.PinRoute, routes.MatchRoute, "mesh"}, []string{"mesh"}, false, 0},
		{"mirror alone", gatewayHosts, "order", routes.Traffic{Mirror: 20}, []string{routes.PinRoute, "gateway", "mesh"}, nil, false, 20},
		{"mirror with a weight", gatewayHosts, "user", routes.Traffic{Weight: 10, Mirror: 100}, []string{routes.PinRoute, "gateway", "mesh"}, nil, false, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(t, tt.extra)
			vs := mustRoute(t, p, tt.service, tt.traffic).VirtualService()
			var names []string
			var match []string
			for _, r := range vs.Spec.Http {
				names = append(names, r.Name)
				switch r.Name {
				case routes.MatchRoute:
					match = []string{}
					for _, m := range r.Match {
						match = append(match, strings.TrimSpace(strings.Join(m.Gateways, ",")+" "+m.GetUri().GetPrefix()))
						if len(m.Headers) != 2 || m.Headers["x-beta"].GetExact() != "1" || m.Headers["cookie"].GetRegex() != `^(.*?;\s*)?canary=always(;.*)?$` {
							t.Errorf("match %v lacks x-beta: 1 and the cookie", m)
						}
					}
					if d := r.Route; len(d) != 1 || d[0].Destination.Host != mustRoute(t, p, tt.service, routes.Traffic{}).CanaryHost() || d[0].Weight != 100 {
						t.Errorf("match route goes to %v, want the canary's Service only", d)
					}
					if got := slices.Contains(r.GetHeaders().GetRequest().GetRemove(), routes.CanaryHeader); got != tt.strip {
						t.Errorf("match route removes %s: %v, want %v", routes.CanaryHeader, got, tt.strip)
					}
					if r.Mirror != nil {
						t.Error("the match route mirrors")
					}
				case routes.PinRoute:
					if r.Mirror != nil {
						t.Error("the pin route mirrors")
					}
				default:
					if got := r.Route[1].Weight; got != int32(tt.traffic.Weight) {
						t.Errorf("route %s: canary weight %d, want %d", r.Name, got, tt.traffic.Weight)
					}
					var got float64
					if r.Mirror != nil {
						if r.Mirror.Subset != "" || r.Mirror.Host != mustRoute(t, p, tt.service, routes.Traffic{}).CanaryHost() {
							t.Errorf("route %s mirrors to %v", r.Name, r.Mirror)
						}
						got = r.GetMirrorPercentage().GetValue()
					}
					if got != tt.mirror {
						t.Errorf("route %s mirrors %g%%, want %g%%", r.Name, got, tt.mirror)
					}
					if len(r.Mirrors) > 0 {
						t.Errorf("route %s uses mirrors", r.Name)
					}
				}
			}
			if !slices.Equal(names, tt.routes) {
				t.Errorf("routes %q, want %q", names, tt.routes)
			}
			if !slices.Equal(match, tt.match) {
				t.Errorf("match route matches %q, want %q", match, tt.match)
			}
		})
	}
}

// The route's VirtualService is the spec Render writes (the local gateway
// routes by it), and routes refuses what Render refuses.
func TestTheRoutesVirtualServiceIsRendered(t *testing.T) {
	p := bundled(t)
	tr := routes.Traffic{Weight: 10, Mirror: 5, Match: &config.Match{Cookie: "canary=always"}}
	res := mustRender(t, p, Options{Services: []string{"user"}, Traffic: map[string]routes.Traffic{"user": tr}})
	var rendered map[string]any
	for _, o := range res.Objects {
		if o.GetKind() == "VirtualService" {
			rendered = o.Object["spec"].(map[string]any)
		}
	}
	vs := mustRoute(t, p, "user", tr).VirtualService()
	// Both through JSON, which gives their numbers one type.
	var got, want any
	for _, c := range []struct {
		v   any
		out *any
	}{{&vs.Spec, &got}, {rendered, &want}} {
		b, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, c.out); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("the route's VirtualService differs from Render's:\n%v\n%v", got, want)
	}
	if _, err := routes.For(p, "user", routes.Traffic{Weight: 101}); err == nil {
		t.Error("weight 101: no error")
	}
	if _, err := routes.For(p, "nope", routes.Traffic{}); err == nil {
		t.Error("unknown service: no error")
	}
}

func mustRoute(t *testing.T, p *config.Project, service string, tr routes.Traffic) routes.Route {
	t.Helper()
	r, err := routes.For(p, service, tr)
	if err != nil {
		t.Fatal(err)
	}
	return r
}
