package routes

import (
	"reflect"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// A VirtualService someone else wrote, or a cluster stored, reads as the
// traffic it
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
