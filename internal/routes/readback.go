package routes

import (
	"math"
	"strings"

	"github.com/msctl/msctl/internal/config"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// PinRoute names the VirtualService route that sends requests carrying
// CanaryHeader to the canary while one runs.
const PinRoute = "pin-canary"

// CanaryWeight reads the canary's share of traffic back from a
// VirtualService: ReadTraffic's Weight, so a redeploy keeps a running
// canary's split.
func CanaryWeight(vs *unstructured.Unstructured) int { return ReadTraffic(vs).Weight }

// ReadTraffic reads a canary's traffic back from a VirtualService as a
// cluster stores it; it is the inverse of Route.VirtualService. The
// weight is the canary's on the first route that is neither the pin nor
// the match; the mirror is that route's mirror to the canary
// (mirror with mirrorPercentage, or mirrors); the match is the match
// route's header conditions, a cookie regex as VirtualService writes it read back
// as the cookie. A nil or foreign VirtualService reads as no canary.
func ReadTraffic(vs *unstructured.Unstructured) Traffic {
	var t Traffic
	if vs == nil {
		return t
	}
	toCanary := canaryDestination(vs.GetName())
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	split := false
	for _, r := range routes {
		route, _ := r.(map[string]any)
		switch route["name"] {
		case PinRoute:
		case MatchRoute:
			t.Match = readMatch(route)
		default:
			if split {
				continue
			}
			split = true
			dests, _, _ := unstructured.NestedSlice(route, "route")
			for _, dst := range dests {
				m, _ := dst.(map[string]any)
				if toCanary(m["destination"]) {
					t.Weight = int(number(m["weight"]))
				}
			}
			t.Mirror = readMirror(route, toCanary)
		}
	}
	return t
}

// canaryDestination recognises a destination of service's canary: its
// Service, or the stable's canary subset as routes written before the
// canary had a Service of its own send it.
func canaryDestination(service string) func(any) bool {
	return func(d any) bool {
		m, _ := d.(map[string]any)
		host, _, _ := unstructured.NestedString(m, "host")
		subset, _, _ := unstructured.NestedString(m, "subset")
		return strings.HasPrefix(host, service+CanarySuffix+".") || subset == CanarySubset
	}
}

// readMirror is the percentage of a route's requests mirrored to the
// canary; Istio mirrors all of them when no percentage is given.
func readMirror(route map[string]any, toCanary func(any) bool) int {
	percent := func(m map[string]any, key string) int {
		v, found, _ := unstructured.NestedFieldNoCopy(m, key, "value")
		if !found {
			return 100
		}
		return int(math.Round(number(v)))
	}
	if toCanary(route["mirror"]) {
		return percent(route, "mirrorPercentage")
	}
	mirrors, _, _ := unstructured.NestedSlice(route, "mirrors")
	for _, mr := range mirrors {
		m, _ := mr.(map[string]any)
		if toCanary(m["destination"]) {
			return percent(m, "percentage")
		}
	}
	return 0
}

// readMatch reads the header conditions of the match route's first match:
// VirtualService writes the same ones on each.
func readMatch(route map[string]any) *config.Match {
	matches, _, _ := unstructured.NestedSlice(route, "match")
	if len(matches) == 0 {
		return nil
	}
	first, _ := matches[0].(map[string]any)
	headers, _, _ := unstructured.NestedMap(first, "headers")
	m := &config.Match{}
	for name, h := range headers {
		hm, _ := h.(map[string]any)
		exact, _, _ := unstructured.NestedString(hm, "exact")
		prefix, _, _ := unstructured.NestedString(hm, "prefix")
		regex, _, _ := unstructured.NestedString(hm, "regex")
		if name == cookieHeader && regex != "" {
			if sub := cookieRegexShape.FindStringSubmatch(regex); sub != nil {
				if cookie, ok := unquoteMeta(sub[1]); ok {
					m.Cookie = cookie
					continue
				}
			}
		}
		if m.Headers == nil {
			m.Headers = map[string]config.StringMatch{}
		}
		m.Headers[name] = config.StringMatch{Exact: exact, Prefix: prefix, Regex: regex}
	}
	return m
}

// number reads a JSON number as unstructured objects hold it: int64 when
// decoded by apimachinery, float64 when decoded by encoding/json.
func number(v any) float64 {
	switch n := v.(type) {
	case int64:
		return float64(n)
	case float64:
		return n
	case int:
		return float64(n)
	}
	return 0
}
