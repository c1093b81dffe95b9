package gateway

import (
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/routes"
	networkingapi "istio.io/api/networking/v1"
)

// The routes compiled from the VirtualService, without a network: who
// takes a request on the edge and on the mesh.
func TestCompiledRoutes(t *testing.T) {
	p := loadProject(t)
	tr := routes.Traffic{Weight: 20, Mirror: 5, Match: &config.Match{Headers: map[string]config.StringMatch{"x-beta": {Regex: "y.s"}}}}
	r, err := routes.For(p, "user", tr)
	if err != nil {
		t.Fatal(err)
	}
	table, err := compile(&r.VirtualService().Spec, routes.GatewayName(p), r.CanaryHost())
	if err != nil {
		t.Fatal(err)
	}
	first := func(list []*route, path string, header map[string]string) *route {
		r := httptest.NewRequest("GET", path, nil)
		for k, v := range header {
			r.Header.Set(k, v)
		}
		for _, rt := range list {
			if rt.matches(r) {
				return rt
			}
		}
		return nil
	}
	for _, tt := range []struct {
		name   string
		mesh   bool
		path   string
		header map[string]string
		want   string // route name, "" none
	}{
		{"edge, own path", false, "/api/v1/users/1", nil, "gateway"},
		{"edge, other path", false, "/api/v1/orders", nil, ""},
		{"edge, A/B match", false, "/api/v1/users", map[string]string{"x-beta": "yes"}, routes.MatchRoute},
		{"edge, regex is whole", false, "/api/v1/users", map[string]string{"x-beta": "yess"}, "gateway"},
		{"edge, pin not honoured", false, "/api/v1/users", map[string]string{routes.CanaryHeader: "true"}, "gateway"},
		{"mesh, any path", true, "/anything", nil, "mesh"},
		{"mesh, pin", true, "/", map[string]string{routes.CanaryHeader: "true"}, routes.PinRoute},
		{"mesh, A/B match", true, "/", map[string]string{"x-beta": "yes"}, routes.MatchRoute},
	} {
		list := table.edge
		if tt.mesh {
			list = table.mesh
		}
		got := ""
		if rt := first(list, tt.path, tt.header); rt != nil {
			got = rt.name
		}
		if got != tt.want {
			t.Errorf("%s: route %q, want %q", tt.name, got, tt.want)
		}
	}
	gw := first(table.edge, "/api/v1/users", nil)
	if gw.mirror != 5 || gw.timeout.Seconds() != 10 || gw.retries != 2 || len(gw.remove) != 1 {
		t.Errorf("gateway route: mirror %v, timeout %v, retries %d, remove %v", gw.mirror, gw.timeout, gw.retries, gw.remove)
	}
	for _, tt := range []struct {
		value float64
		want  bool
	}{{0, false}, {79.99, false}, {80, true}, {99.99, true}} {
		if got := gw.pick(tt.value); got != tt.want {
			t.Errorf("pick(%v) at weight 20: canary %v, want %v", tt.value, got, tt.want)
		}
	}
}

func TestCompileRefusesWhatItCannotHonour(t *testing.T) {
	for _, tt := range []struct {
		name  string
		route *networkingapi.HTTPRoute
		want  string
	}{
		{"rewrite", &networkingapi.HTTPRoute{Name: "r", Rewrite: &networkingapi.HTTPRewrite{Uri: "/"}}, "route r: the local gateway does not support rewrite"},
		{"method match", &networkingapi.HTTPRoute{Name: "m", Match: []*networkingapi.HTTPMatchRequest{{Method: &networkingapi.StringMatch{}}}}, "matches other than"},
		{"other subset", &networkingapi.HTTPRoute{Name: "s", Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Subset: "v2"}}}}, `destination  "v2" is neither the stable subset nor the canary's Service u-canary`},
		{"the old canary subset", &networkingapi.HTTPRoute{Name: "c", Route: []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: "u", Subset: "canary"}}}}, `destination u "canary" is neither`},
		{"bad regex", &networkingapi.HTTPRoute{Name: "x", Match: []*networkingapi.HTTPMatchRequest{{Uri: &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Regex{Regex: "("}}}}}, "uri: error parsing regexp"},
	} {
		_, err := compile(&networkingapi.VirtualService{Gateways: []string{"mesh"}, Http: []*networkingapi.HTTPRoute{tt.route}}, "gw", "u-canary")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.want)
		}
	}
}
