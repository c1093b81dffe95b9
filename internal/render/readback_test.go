package render

import (
	"reflect"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// What render writes as the canary weight, CanaryWeight reads back, pin
// route or not.
func TestCanaryWeightRoundTrip(t *testing.T) {
	p := bundled(t)
	for _, w := range []int{0, 1, 25, 100} {
		res := mustRender(t, p, Options{Services: []string{"order"}, CanaryWeights: map[string]int{"order": w}})
		var vs *unstructured.Unstructured
		for _, o := range res.Istio("order") {
			if o.GetKind() == "VirtualService" {
				vs = o.Unstructured
			}
		}
		if vs == nil {
			t.Fatal("no VirtualService rendered")
		}
		if got := CanaryWeight(vs); got != w {
			t.Errorf("weight %d read back as %d", w, got)
		}
	}
}

// Traffic -> VirtualService -> ReadTraffic gives the traffic back, for an
// exposed service and a mesh-only one.
func TestTrafficRoundTrip(t *testing.T) {
	headers := func(kv ...any) map[string]config.StringMatch {
		m := map[string]config.StringMatch{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1].(config.StringMatch)
		}
		return m
	}
	tests := []struct {
		name string
		t    Traffic
	}{
		{"no canary", Traffic{}},
		{"weight", Traffic{Weight: 25}},
		{"all traffic", Traffic{Weight: 100}},
		{"header exact", Traffic{Match: &config.Match{Headers: headers("x-beta", config.StringMatch{Exact: "1"})}}},
		{"header prefix", Traffic{Match: &config.Match{Headers: headers("x-user", config.StringMatch{Prefix: "test-"})}}},
		{"header regex", Traffic{Match: &config.Match{Headers: headers("user-agent", config.StringMatch{Regex: ".*Firefox.*"})}}},
		{"cookie", Traffic{Match: &config.Match{Cookie: "canary=always"}}},
		{"cookie with regex characters", Traffic{Match: &config.Match{Cookie: "ab.test=v1.2+(beta)*[x]|$^?{}"}}},
		{"quoted cookie", Traffic{Match: &config.Match{Cookie: `beta="yes"`}}},
		{"headers and cookie", Traffic{Match: &config.Match{
			Headers: headers("x-beta", config.StringMatch{Exact: "1"}, "x-region", config.StringMatch{Regex: "eu-.*"}),
			Cookie:  "canary=always",
		}}},
		{"a regex on the cookie header stays one", Traffic{Match: &config.Match{Headers: headers("cookie", config.StringMatch{Regex: ".*beta.*"})}}},
		{"mirror", Traffic{Mirror: 20}},
		{"mirror everything", Traffic{Mirror: 100}},
		{"weight, match and mirror", Traffic{Weight: 10, Mirror: 50, Match: &config.Match{Cookie: "a=b"}}},
	}
	p := bundled(t)
	for _, tt := range tests {
		for _, service := range []string{"order", "payment"} {
			t.Run(tt.name+"/"+service, func(t *testing.T) {
				res := mustRender(t, p, Options{Services: []string{service}, Traffic: map[string]Traffic{service: tt.t}})
				vs := find(res, service, "VirtualService")
				if got := ReadTraffic(vs.Unstructured); !reflect.DeepEqual(got, tt.t) {
					t.Errorf("read back %+v (match %+v), want %+v (match %+v)", got, got.Match, tt.t, tt.t.Match)
				}
				if got := CanaryWeight(vs.Unstructured); got != tt.t.Weight {
					t.Errorf("CanaryWeight %d, want %d", got, tt.t.Weight)
				}
			})
		}
	}
}

// A VirtualService someone else wrote, or a cluster stored, reads as the
// traffic it routes.
func TestReadTrafficOfHandWrittenObjects(t *testing.T) {
	split := func(canary any, extra map[string]any) map[string]any {
		r := map[string]any{"name": "mesh", "route": []any{
			map[string]any{"destination": map[string]any{"subset": "stable"}},
			map[string]any{"destination": map[string]any{"subset": "canary"}, "weight": canary},
		}}
		for k, v := range extra {
			r[k] = v
		}
		return r
	}
	canary := map[string]any{"host": "order", "subset": "canary"}
	matchRoute := func(headers map[string]any) map[string]any {
		return map[string]any{"name": MatchRoute, "match": []any{map[string]any{"headers": headers}}}
	}
	for _, tc := range []struct {
		name   string
		routes []any
		want   Traffic
	}{
		{"weight as a float", []any{split(float64(30), nil)}, Traffic{Weight: 30}},
		{"mirror without a percentage mirrors all", []any{split(int64(0), map[string]any{"mirror": canary})}, Traffic{Mirror: 100}},
		{"fractional mirror percentage", []any{split(int64(0), map[string]any{"mirror": canary, "mirrorPercentage": map[string]any{"value": 12.5}})}, Traffic{Mirror: 13}},
		{"mirrors list", []any{split(int64(5), map[string]any{"mirrors": []any{
			map[string]any{"destination": map[string]any{"subset": "other"}},
			map[string]any{"destination": canary, "percentage": map[string]any{"value": int64(40)}},
		}})}, Traffic{Weight: 5, Mirror: 40}},
		{"mirror elsewhere", []any{split(int64(0), map[string]any{"mirror": map[string]any{"subset": "stable"}})}, Traffic{}},
		{"only the first split counts", []any{split(int64(10), nil), split(int64(90), map[string]any{"mirror": canary})}, Traffic{Weight: 10}},
		{"match and pin before the split", []any{
			map[string]any{"name": PinRoute},
			matchRoute(map[string]any{"x-beta": map[string]any{"exact": "1"}}),
			split(int64(0), nil),
		}, Traffic{Match: &config.Match{Headers: map[string]config.StringMatch{"x-beta": {Exact: "1"}}}}},
		{"a cookie regex of another shape", []any{matchRoute(map[string]any{"cookie": map[string]any{"regex": "^canary=.*$"}})},
			Traffic{Match: &config.Match{Headers: map[string]config.StringMatch{"cookie": {Regex: "^canary=.*$"}}}}},
		{"a cookie-shaped regex with a real regex inside", []any{matchRoute(map[string]any{"cookie": map[string]any{"regex": `^(.*?;\s*)?canary=.*(;.*)?$`}})},
			Traffic{Match: &config.Match{Headers: map[string]config.StringMatch{"cookie": {Regex: `^(.*?;\s*)?canary=.*(;.*)?$`}}}}},
	} {
		vs := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"http": tc.routes}}}
		if got := ReadTraffic(vs); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: %+v (match %+v), want %+v (match %+v)", tc.name, got, got.Match, tc.want, tc.want.Match)
		}
	}
	if ReadTraffic(nil) != (Traffic{}) {
		t.Error("nil VirtualService")
	}
}

func TestCanaryWeightOfHandWrittenObjects(t *testing.T) {
	route := func(name string, canary int64) map[string]any {
		return map[string]any{"name": name, "route": []any{
			map[string]any{"destination": map[string]any{"subset": "stable"}, "weight": 100 - canary},
			map[string]any{"destination": map[string]any{"subset": "canary"}, "weight": canary},
		}}
	}
	pin := map[string]any{"name": PinRoute, "route": []any{map[string]any{"destination": map[string]any{"subset": "canary"}, "weight": int64(100)}}}
	for _, tc := range []struct {
		name   string
		routes []any
		want   int
	}{
		{"no routes", nil, 0},
		{"pin first", []any{pin, route("mesh", 30)}, 30},
		{"canary by its Service", []any{map[string]any{"name": "mesh", "route": []any{
			map[string]any{"destination": map[string]any{"host": "user.shop.svc.cluster.local", "subset": "stable"}, "weight": int64(75)},
			map[string]any{"destination": map[string]any{"host": "user-canary.shop.svc.cluster.local"}, "weight": int64(25)},
		}}}, 25},
		{"no canary subset", []any{map[string]any{"name": "mesh", "route": []any{map[string]any{"destination": map[string]any{"subset": "stable"}}}}}, 0},
	} {
		vs := &unstructured.Unstructured{Object: map[string]any{"metadata": map[string]any{"name": "user"}, "spec": map[string]any{"http": tc.routes}}}
		if got := CanaryWeight(vs); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
	if CanaryWeight(nil) != 0 {
		t.Error("nil VirtualService")
	}
}

func TestIstioOfOneService(t *testing.T) {
	res := mustRender(t, bundled(t), Options{Services: []string{"order", "user"}})
	kinds := map[string]bool{}
	for _, o := range res.Istio("order") {
		if o.Service != "order" || o.Source != SourceIstio {
			t.Errorf("%s/%s of %q from %s", o.GetKind(), o.GetName(), o.Service, o.Source)
		}
		kinds[o.GetKind()] = true
	}
	if !kinds["VirtualService"] || !kinds["DestinationRule"] || !kinds["AuthorizationPolicy"] || kinds["Gateway"] {
		t.Errorf("kinds %v", kinds)
	}
}

// Every kind a service's Istio objects have is in ServiceIstioKinds, or
// deploy could not remove it once render stops producing it.
func TestServiceIstioKindsCoverWhatRenderProduces(t *testing.T) {
	known := map[string]bool{}
	for _, gvk := range ServiceIstioKinds() {
		known[gvk.GroupVersion().String()+"/"+gvk.Kind] = true
	}
	res := mustRender(t, bundled(t), Options{})
	for _, s := range bundled(t).ServiceNames() {
		for _, o := range res.Istio(s) {
			if !known[o.GetAPIVersion()+"/"+o.GetKind()] {
				t.Errorf("%s renders a %s/%s that ServiceIstioKinds lacks", s, o.GetAPIVersion(), o.GetKind())
			}
		}
	}
}

func TestChartDigestIsStable(t *testing.T) {
	a, err := ChartDigest()
	b, _ := ChartDigest()
	if err != nil || a != b || len(a) != 64 {
		t.Errorf("%q %q %v", a, b, err)
	}
}
