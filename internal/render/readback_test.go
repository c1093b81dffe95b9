package render

import (
	"reflect"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/routes"
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
		if got := routes.CanaryWeight(vs); got != w {
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
		t    routes.Traffic
	}{
		{"no canary", routes.Traffic{}},
		{"weight", routes.Traffic{Weight: 25}},
		{"all traffic", routes.Traffic{Weight: 100}},
		{"header exact", routes.Traffic{Match: &config.Match{Headers: headers("x-beta", config.StringMatch{Exact: "1"})}}},
		{"header prefix", routes.Traffic{Match: &config.Match{Headers: headers("x-user", config.StringMatch{Prefix: "test-"})}}},
		{"header regex", routes.Traffic{Match: &config.Match{Headers: headers("user-agent", config.StringMatch{Regex: ".*Firefox.*"})}}},
		{"cookie", routes.Traffic{Match: &config.Match{Cookie: "canary=always"}}},
		{"cookie with regex characters", routes.Traffic{Match: &config.Match{Cookie: "ab.test=v1.2+(beta)*[x]|$^?{}"}}},
		{"quoted cookie", routes.Traffic{Match: &config.Match{Cookie: `beta="yes"`}}},
		{"headers and cookie", routes.Traffic{Match: &config.Match{
			Headers: headers("x-beta", config.StringMatch{Exact: "1"}, "x-region", config.StringMatch{Regex: "eu-.*"}),
			Cookie:  "canary=always",
		}}},
		{"a regex on the cookie header stays one", routes.Traffic{Match: &config.Match{Headers: headers("cookie", config.StringMatch{Regex: ".*beta.*"})}}},
		{"mirror", routes.Traffic{Mirror: 20}},
		{"mirror everything", routes.Traffic{Mirror: 100}},
		{"weight, match and mirror", routes.Traffic{Weight: 10, Mirror: 50, Match: &config.Match{Cookie: "a=b"}}},
	}
	p := bundled(t)
	for _, tt := range tests {
		for _, service := range []string{"order", "payment"} {
			t.Run(tt.name+"/"+service, func(t *testing.T) {
				res := mustRender(t, p, Options{Services: []string{service}, Traffic: map[string]routes.Traffic{service: tt.t}})
				vs := find(res, service, "VirtualService")
				if got := routes.ReadTraffic(vs.Unstructured); !reflect.DeepEqual(got, tt.t) {
					t.Errorf("read back %+v (match %+v), want %+v (match %+v)", got, got.Match, tt.t, tt.t.Match)
				}
				if got := routes.CanaryWeight(vs.Unstructured); got != tt.t.Weight {
					t.Errorf("CanaryWeight %d, want %d", got, tt.t.Weight)
				}
			})
		}
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
