package gateway

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/routes"
	networkingapi "istio.io/api/networking/v1"
)

// route is one HTTPRoute of a VirtualService, compiled for one listener:
// only the matches that apply there are kept.
type route struct {
	name  string
	match []match // none: every request
	dests []dest
	// mirror is the percentage of requests copied to the canary; 0 none.
	mirror  float64
	remove  []string
	set     map[string]string
	add     map[string]string
	timeout time.Duration
	// retries is how many times a connection refused by the upstream is
	// tried again: the only failure render's routes retry on that the
	// gateway can see before a request leaves.
	retries int
}

type dest struct {
	canary bool
	weight float64
}

type match struct {
	uri     func(string) bool // nil: any path
	headers []headerMatch
}

type headerMatch struct {
	name  string
	value func(string) bool
}

func (m match) matches(r *http.Request) bool {
	if m.uri != nil && !m.uri(r.URL.Path) {
		return false
	}
	for _, h := range m.headers {
		// Envoy sees a header sent several times as one value, joined
		// with commas; a header that is absent matches nothing.
		vs := r.Header.Values(h.name)
		if len(vs) == 0 || !h.value(strings.Join(vs, ",")) {
			return false
		}
	}
	return true
}

func (rt *route) matches(r *http.Request) bool {
	if len(rt.match) == 0 {
		return true
	}
	for _, m := range rt.match {
		if m.matches(r) {
			return true
		}
	}
	return false
}

// pick chooses a destination for a value in [0, 100), Envoy's way: the
// destinations in order, each taking its share of the total weight.
func (rt *route) pick(value float64) (canary bool) {
	var total float64
	for _, d := range rt.dests {
		total += d.weight
	}
	at := value / 100 * total
	var sum float64
	for _, d := range rt.dests {
		if d.weight <= 0 {
			continue
		}
		sum += d.weight
		if at < sum {
			return d.canary
		}
	}
	return false
}

// compiled are a VirtualService's routes as the edge and as the mesh see
// them, in the spec's order.
type compiled struct {
	edge, mesh []*route
}

// compile reads spec, written by render for one service, into the routes
// of the gateway (the project's Istio gateway, named gatewayName) and of
// the mesh; canaryHost is the service's canary's. It refuses what it
// cannot honour rather than route otherwise than a cluster would.
func compile(spec *networkingapi.VirtualService, gatewayName, canaryHost string) (compiled, error) {
	subset := func(d *networkingapi.Destination) (canary bool, err error) {
		switch {
		case d.GetHost() == canaryHost && d.GetSubset() == "":
			return true, nil
		case d.GetSubset() == routes.StableSubset:
			return false, nil
		}
		return false, fmt.Errorf("destination %s %q is neither the %s subset nor the canary's Service %s", d.GetHost(), d.GetSubset(), routes.StableSubset, canaryHost)
	}
	var out compiled
	for i, hr := range spec.GetHttp() {
		name := hr.GetName()
		if name == "" {
			name = fmt.Sprint(i)
		}
		if err := unsupported(hr); err != "" {
			return compiled{}, fmt.Errorf("route %s: the local gateway does not support %s", name, err)
		}
		base := &route{name: name}
		for _, d := range hr.GetRoute() {
			canary, err := subset(d.GetDestination())
			if err != nil {
				return compiled{}, fmt.Errorf("route %s: %v", name, err)
			}
			base.dests = append(base.dests, dest{canary: canary, weight: float64(d.GetWeight())})
		}
		if len(base.dests) == 1 && base.dests[0].weight == 0 {
			// One destination without a weight takes all the traffic.
			base.dests[0].weight = 100
		}
		if m := hr.GetMirror(); m != nil {
			canary, err := subset(m)
			if err != nil {
				return compiled{}, fmt.Errorf("route %s: mirror: %v", name, err)
			}
			if !canary {
				return compiled{}, fmt.Errorf("route %s: mirror to the stable subset is not supported", name)
			}
			base.mirror = 100
			if hr.GetMirrorPercentage() != nil {
				base.mirror = hr.GetMirrorPercentage().GetValue()
			}
		}
		if ops := hr.GetHeaders().GetRequest(); ops != nil {
			base.remove, base.set, base.add = ops.GetRemove(), ops.GetSet(), ops.GetAdd()
		}
		if hr.GetTimeout() != nil {
			base.timeout = hr.GetTimeout().AsDuration()
		}
		if strings.Contains(hr.GetRetries().GetRetryOn(), "connect-failure") {
			base.retries = int(hr.GetRetries().GetAttempts())
		}

		for _, listener := range []struct {
			gateway string
			routes  *[]*route
		}{{gatewayName, &out.edge}, {meshGateway, &out.mesh}} {
			rt := *base
			rt.match = nil
			applies := len(hr.GetMatch()) == 0 && slices.Contains(spec.GetGateways(), listener.gateway)
			for _, m := range hr.GetMatch() {
				gateways := m.GetGateways()
				if len(gateways) == 0 {
					gateways = spec.GetGateways()
				}
				if !slices.Contains(gateways, listener.gateway) {
					continue
				}
				cm, err := compileMatch(m)
				if err != nil {
					return compiled{}, fmt.Errorf("route %s: %v", name, err)
				}
				rt.match = append(rt.match, cm)
				applies = true
			}
			if applies {
				*listener.routes = append(*listener.routes, &rt)
			}
		}
	}
	return out, nil
}

// meshGateway is Istio's name for the sidecars, as render writes it.
const meshGateway = "mesh"

// unsupported names the first feature of hr the gateway cannot honour.
func unsupported(hr *networkingapi.HTTPRoute) string {
	switch {
	case hr.GetRedirect() != nil:
		return "redirect"
	case hr.GetDirectResponse() != nil:
		return "directResponse"
	case hr.GetDelegate() != nil:
		return "delegate"
	case hr.GetRewrite() != nil:
		return "rewrite"
	case hr.GetFault() != nil:
		return "fault"
	case len(hr.GetMirrors()) > 0:
		return "mirrors"
	case hr.GetHeaders().GetResponse() != nil:
		return "response header operations"
	}
	for _, m := range hr.GetMatch() {
		switch {
		case m.GetScheme() != nil, m.GetMethod() != nil, m.GetAuthority() != nil, m.GetPort() != 0,
			len(m.GetSourceLabels()) > 0, len(m.GetQueryParams()) > 0, len(m.GetWithoutHeaders()) > 0,
			m.GetIgnoreUriCase(), m.GetSourceNamespace() != "":
			return "matches other than gateways, uri and headers"
		}
	}
	return ""
}

func compileMatch(m *networkingapi.HTTPMatchRequest) (match, error) {
	var out match
	if m.GetUri() != nil {
		f, err := stringMatcher(m.GetUri())
		if err != nil {
			return match{}, fmt.Errorf("uri: %v", err)
		}
		out.uri = f
	}
	for name, sm := range m.GetHeaders() {
		f, err := stringMatcher(sm)
		if err != nil {
			return match{}, fmt.Errorf("header %s: %v", name, err)
		}
		out.headers = append(out.headers, headerMatch{name: http.CanonicalHeaderKey(name), value: f})
	}
	return out, nil
}

// stringMatcher is sm as a test of a value; a regex must match the whole
// value, as Envoy's safe_regex does.
func stringMatcher(sm *networkingapi.StringMatch) (func(string) bool, error) {
	switch m := sm.GetMatchType().(type) {
	case *networkingapi.StringMatch_Exact:
		return func(v string) bool { return v == m.Exact }, nil
	case *networkingapi.StringMatch_Prefix:
		return func(v string) bool { return strings.HasPrefix(v, m.Prefix) }, nil
	case *networkingapi.StringMatch_Regex:
		re, err := regexp.Compile(`^(?:` + m.Regex + `)$`)
		if err != nil {
			return nil, err
		}
		return re.MatchString, nil
	}
	return nil, fmt.Errorf("empty string match")
}
