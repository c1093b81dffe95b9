package routes

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
)

// Traffic is a canary's traffic state for one service, the part of a Route
// that changes while a canary runs. Keep it a plain value: it is stored,
// compared and passed between processes as it is.
//
// The zero value is no canary: every request goes to the stable.
type Traffic struct {
	// Weight is the canary's share of traffic in percent.
	Weight int `json:"weight"`
	// Match, when set, sends the requests it selects to the canary
	// whatever the weight (an A/B step).
	Match *config.Match `json:"match,omitempty"`
	// Mirror is the percentage of the weighted routes' requests copied to
	// the canary, its responses discarded. Mirror steps run at weight 0,
	// so that is the stable-bound traffic.
	Mirror int `json:"mirror,omitempty"`
}

// Running reports whether a canary takes part in the traffic: a weight, a
// match or mirroring. Only then does the service route to the canary
// subset at all, the x-canary pin included.
func (t Traffic) Running() bool { return t.Weight > 0 || t.Match != nil || t.Mirror > 0 }

// Validate says what is wrong with t as service's traffic: a weight or a
// mirror outside 0-100, or a match that does not hold together.
func (t Traffic) Validate(service string) error {
	if t.Weight < 0 || t.Weight > 100 {
		return errkind.BadInputf("canary weight %d for %s is outside 0-100", t.Weight, service)
	}
	if t.Mirror < 0 || t.Mirror > 100 {
		return errkind.BadInputf("canary mirror %d for %s is outside 0-100", t.Mirror, service)
	}
	if t.Match != nil {
		if err := t.Match.Validate(); err != nil {
			return errkind.BadInputf("canary match for %s: %w", service, err)
		}
	}
	return nil
}

// Route is one service's routing, which every backend turns into its
// objects.
type Route struct {
	Service, Namespace string
	// Timeout bounds a request, retries included.
	Timeout time.Duration
	// Prefixes are the path prefixes at which the project's ingress
	// gateway, named Gateway, sends requests for its public Hosts to the
	// service.
	Prefixes []string
	Gateway  string
	Hosts    []string
	// AllowCanaryHeader lets a client outside the mesh pin a request to the
	// canary with CanaryHeader; otherwise the gateway removes the header.
	AllowCanaryHeader bool
	Traffic           Traffic
}

// For is service's route in p under the canary traffic t. An unknown
// service or a bad t is bad input.
func For(p *config.Project, service string, t Traffic) (Route, error) {
	s := p.Service(service)
	if s == nil {
		return Route{}, errkind.BadInputf("unknown service %q (the project has: %s)", service, strings.Join(p.ServiceNames(), ", "))
	}
	if err := t.Validate(service); err != nil {
		return Route{}, err
	}
	return Route{
		Service: s.Name, Namespace: p.Namespace, Timeout: time.Duration(s.Timeout),
		Prefixes: slices.Clone(s.Routes), Gateway: GatewayName(p), Hosts: slices.Clone(p.Gateway.Hosts),
		AllowCanaryHeader: p.Gateway.AllowCanaryHeader, Traffic: t,
	}, nil
}

// GatewayName is the name of the project's ingress gateway.
func GatewayName(p *config.Project) string { return p.Name + "-gateway" }

// Exposed says whether the ingress gateway sends requests to the service.
func (r Route) Exposed() bool { return len(r.Prefixes) > 0 && len(r.Hosts) > 0 }

// Host is the cluster-local host of the service's (stable's) Service.
func (r Route) Host() string { return fmt.Sprintf("%s.%s.svc.cluster.local", r.Service, r.Namespace) }

// CanaryHost is the cluster-local host of the canary's own Service, which
// the chart's canary release creates. The routes send the canary's share
// to it, not to a subset of the stable's Service, so that a request no
// canary pod received (none ready) is still the canary's: the caller's
// sidecar records it under that Service's name.
func (r Route) CanaryHost() string {
	return fmt.Sprintf("%s%s.%s.svc.cluster.local", r.Service, CanarySuffix, r.Namespace)
}
