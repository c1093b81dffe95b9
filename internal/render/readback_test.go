package render

import (
	"testing"

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
		{"no canary subset", []any{map[string]any{"name": "mesh", "route": []any{map[string]any{"destination": map[string]any{"subset": "stable"}}}}}, 0},
	} {
		vs := &unstructured.Unstructured{Object: map[string]any{"spec": map[string]any{"http": tc.routes}}}
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
