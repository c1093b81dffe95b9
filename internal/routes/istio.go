package routes

import (
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/config"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingapi "istio.io/api/networking/v1"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The Istio backend: a VirtualService for the routes, a DestinationRule
// for each track's Service.

// The stable's subset, the canary's name suffix and the header that pins a
// request to the canary.
const (
	StableSubset = "stable"
	// CanarySubset is the subset of the stable's Service that routes
	// written before the canary had a Service of its own send it.
	CanarySubset = "canary"
	CanarySuffix = "-canary"
	CanaryHeader = "x-canary"
	// MeshGateway is Istio's name for the sidecars of the mesh, as opposed
	// to an ingress gateway.
	MeshGateway = "mesh"
)

// DestinationRules are the traffic policies of the canary's Service and of
// the stable's (with its stable subset), in the order to apply them: the
// canary's before the route to it, the stable's (whose canary subset
// routes written by an earlier msctl may still use) after, so an upgrade
// has no moment of a route to nothing.
func (r Route) DestinationRules() []*networking.DestinationRule {
	stable := r.destinationRule(r.Service, r.Host())
	stable.Spec.Subsets = []*networkingapi.Subset{{Name: StableSubset, Labels: map[string]string{"version": StableSubset}}}
	return []*networking.DestinationRule{r.destinationRule(r.Service+CanarySuffix, r.CanaryHost()), stable}
}

// destinationRule is the traffic policy of the requests for host: mutual
// TLS, connection limits and outlier detection, the same for both tracks.
func (r Route) destinationRule(name, host string) *networking.DestinationRule {
	return &networking.DestinationRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "DestinationRule"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: r.Namespace},
		Spec: networkingapi.DestinationRule{
			Host: host,
			TrafficPolicy: &networkingapi.TrafficPolicy{
				Tls: &networkingapi.ClientTLSSettings{Mode: networkingapi.ClientTLSSettings_ISTIO_MUTUAL},
				ConnectionPool: &networkingapi.ConnectionPoolSettings{
					Tcp: &networkingapi.ConnectionPoolSettings_TCPSettings{
						MaxConnections: 100,
						ConnectTimeout: durationpb.New(3 * time.Second),
					},
					Http: &networkingapi.ConnectionPoolSettings_HTTPSettings{
						Http1MaxPendingRequests: 100,
						Http2MaxRequests:        1000,
						MaxRetries:              3,
					},
				},
				// Ejects a pod that keeps failing: the mesh's circuit breaker.
				OutlierDetection: &networkingapi.OutlierDetection{
					Consecutive_5XxErrors: wrapperspb.UInt32(5),
					Interval:              durationpb.New(10 * time.Second),
					BaseEjectionTime:      durationpb.New(30 * time.Second),
					MaxEjectionPercent:    50,
				},
			},
		},
	}
}

// VirtualService routes the service's traffic: inside the mesh and, when exposed,
// from the gateway on the service's own path prefixes, split between the
// stable subset and the canary's Service by t's weight. While a canary runs, routes
// before the split send it the requests that carry CanaryHeader (the pin)
// and those t's match selects, in that order; and the split routes mirror
// t's share of their requests to it.
func (r Route) VirtualService() *networking.VirtualService {
	t := r.Traffic
	host := r.Host()
	gatewayName := r.Gateway
	canary := func() *networkingapi.Destination { return &networkingapi.Destination{Host: r.CanaryHost()} }
	weighted := func(route *networkingapi.HTTPRoute) *networkingapi.HTTPRoute {
		route.Route = []*networkingapi.HTTPRouteDestination{
			{Destination: &networkingapi.Destination{Host: host, Subset: StableSubset}, Weight: int32(100 - t.Weight)},
			{Destination: canary(), Weight: int32(t.Weight)},
		}
		if t.Mirror > 0 {
			// One destination: mirror with mirrorPercentage. mirrors is
			// the list form for several, and a route takes one or the other.
			route.Mirror = canary()
			route.MirrorPercentage = &networkingapi.Percent{Value: float64(t.Mirror)}
		}
		return route
	}
	// The service's timeout bounds the whole request, retries included.
	// There is no perTryTimeout: Istio's default is the route's timeout,
	// so no try is cut short of it.
	timeout := func() *durationpb.Duration { return durationpb.New(r.Timeout) }
	retries := func() *networkingapi.HTTPRetry {
		return &networkingapi.HTTPRetry{
			Attempts: 2,
			// Only failures where the request never reached the service,
			// so a call it handled, idempotent or not, is never sent
			// again. (gRPC's "unavailable" is an answer from the service;
			// the kit retries its idempotent methods itself.)
			RetryOn: "connect-failure,refused-stream,reset-before-request",
		}
	}
	onRoutes := func() []*networkingapi.HTTPMatchRequest {
		var match []*networkingapi.HTTPMatchRequest
		for _, prefix := range r.Prefixes {
			match = append(match, &networkingapi.HTTPMatchRequest{
				Gateways: []string{gatewayName},
				Uri:      &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Prefix{Prefix: prefix}},
			})
		}
		return match
	}

	vs := &networking.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "VirtualService"},
		ObjectMeta: metav1.ObjectMeta{Name: r.Service, Namespace: r.Namespace},
		Spec:       networkingapi.VirtualService{Hosts: []string{host}, Gateways: []string{MeshGateway}},
	}
	spec := &vs.Spec
	if r.Exposed() {
		spec.Hosts = append(spec.Hosts, r.Hosts...)
		spec.Gateways = append(spec.Gateways, gatewayName)
	}
	// Only the mesh chooses the canary: unless the project allows it, a
	// client outside cannot pin a request, nor the calls the service makes
	// with it, so the gateway's routes remove the header.
	stripAtGateway := func(route *networkingapi.HTTPRoute) *networkingapi.HTTPRoute {
		if r.Exposed() && !r.AllowCanaryHeader {
			route.Headers = &networkingapi.Headers{Request: &networkingapi.Headers_HeaderOperations{Remove: []string{CanaryHeader}}}
		}
		return route
	}
	if t.Running() {
		// The pin is scoped to this service's requests: every exposed
		// service's routes share the public hosts, so a pin without a path
		// would send any path there to this canary.
		match := []*networkingapi.HTTPMatchRequest{{Gateways: []string{MeshGateway}}}
		if r.Exposed() && r.AllowCanaryHeader {
			match = append(match, onRoutes()...)
		}
		for _, m := range match {
			m.Headers = map[string]*networkingapi.StringMatch{
				CanaryHeader: {MatchType: &networkingapi.StringMatch_Exact{Exact: "true"}},
			}
		}
		spec.Http = append(spec.Http, &networkingapi.HTTPRoute{
			Name:    PinRoute,
			Match:   match,
			Route:   []*networkingapi.HTTPRouteDestination{{Destination: canary(), Weight: 100}},
			Timeout: timeout(),
			Retries: retries(),
		})
	}
	if t.Match != nil {
		// The match applies where the split does: inside the mesh, and at
		// the gateway on the service's own routes. Every header condition
		// must hold.
		match := []*networkingapi.HTTPMatchRequest{{Gateways: []string{MeshGateway}}}
		if r.Exposed() {
			match = append(match, onRoutes()...)
		}
		for _, m := range match {
			m.Headers = matchHeaders(t.Match)
		}
		spec.Http = append(spec.Http, stripAtGateway(&networkingapi.HTTPRoute{
			Name:    MatchRoute,
			Match:   match,
			Route:   []*networkingapi.HTTPRouteDestination{{Destination: canary(), Weight: 100}},
			Timeout: timeout(),
			Retries: retries(),
		}))
	}
	if r.Exposed() {
		spec.Http = append(spec.Http, stripAtGateway(weighted(&networkingapi.HTTPRoute{
			Name: "gateway", Match: onRoutes(), Timeout: timeout(), Retries: retries(),
		})))
	}
	spec.Http = append(spec.Http, weighted(&networkingapi.HTTPRoute{
		Name:    "mesh",
		Match:   []*networkingapi.HTTPMatchRequest{{Gateways: []string{MeshGateway}}},
		Timeout: timeout(),
		Retries: retries(),
	}))
	return vs
}

// MatchRoute names the VirtualService route that sends the requests an A/B
// step selects to the canary.
const MatchRoute = "match-canary"

// cookieHeader is the header a cookie match reads; Istio matches headers by
// lower-case name.
const cookieHeader = "cookie"

// cookieRegex matches a Cookie header holding the cookie name=value among
// any others: at the start or after "; ", and up to ";" or the end.
func cookieRegex(name, value string) string {
	return `^(.*?;\s*)?` + regexp.QuoteMeta(name+"="+value) + `(;.*)?$`
}

// cookieRegexShape recognises what cookieRegex writes, to read the cookie
// back. A cookie's name and value have no backslash (RFC 6265), so the
// only backslashes in the middle are QuoteMeta's escapes.
var cookieRegexShape = regexp.MustCompile(`^\^\(\.\*\?;\\s\*\)\?(.+)\(;\.\*\)\?\$$`)

// unquoteMeta undoes regexp.QuoteMeta of a string without backslashes of
// its own; ok is false when s holds a regular expression rather than quoted
// text.
func unquoteMeta(s string) (string, bool) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\\' {
			if i+1 == len(s) {
				return "", false
			}
			i++
			b.WriteByte(s[i])
			continue
		}
		if strings.IndexByte(`.+*?()|[]{}^$`, c) >= 0 {
			return "", false
		}
		b.WriteByte(c)
	}
	return b.String(), true
}

// matchHeaders are the header conditions of m as Istio matches them: each
// header's matcher, and the cookie as a regex on the Cookie header.
func matchHeaders(m *config.Match) map[string]*networkingapi.StringMatch {
	out := make(map[string]*networkingapi.StringMatch, len(m.Headers)+1)
	for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
		sm := m.Headers[name]
		switch {
		case sm.Exact != "":
			out[name] = &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Exact{Exact: sm.Exact}}
		case sm.Prefix != "":
			out[name] = &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Prefix{Prefix: sm.Prefix}}
		default:
			out[name] = &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Regex{Regex: sm.Regex}}
		}
	}
	if name, value, ok := m.CookieParts(); ok {
		out[cookieHeader] = &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Regex{Regex: cookieRegex(name, value)}}
	}
	return out
}
