package render

import (
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	networkingapi "istio.io/api/networking/v1"
)

// Traffic is a canary's traffic state for one service: the one route model
// that the cluster's VirtualService is rendered from and that the local
// gateway reads to route the same way. Keep it a plain value: it is stored,
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

// trafficFor merges Options.CanaryWeights (the shorthand: a weight alone)
// into Options.Traffic, and checks every entry: one code path for both.
func (o Options) trafficFor(p *config.Project) (map[string]Traffic, error) {
	out := make(map[string]Traffic, len(o.Traffic)+len(o.CanaryWeights))
	// Sorted, so that of several bad entries the same one is reported.
	for _, name := range slices.Sorted(maps.Keys(o.CanaryWeights)) {
		w := o.CanaryWeights[name]
		if p.Service(name) == nil {
			return nil, errkind.BadInputf("canary weight for unknown service %q", name)
		}
		out[name] = Traffic{Weight: w}
	}
	for _, name := range slices.Sorted(maps.Keys(o.Traffic)) {
		t := o.Traffic[name]
		if p.Service(name) == nil {
			return nil, errkind.BadInputf("canary traffic for unknown service %q", name)
		}
		if _, twice := out[name]; twice {
			return nil, errkind.BadInputf("canary traffic for %s is given twice, as a weight and as traffic", name)
		}
		out[name] = t
	}
	for _, name := range slices.Sorted(maps.Keys(out)) {
		t := out[name]
		if t.Weight < 0 || t.Weight > 100 {
			return nil, errkind.BadInputf("canary weight %d for %s is outside 0-100", t.Weight, name)
		}
		if t.Mirror < 0 || t.Mirror > 100 {
			return nil, errkind.BadInputf("canary mirror %d for %s is outside 0-100", t.Mirror, name)
		}
		if t.Match != nil {
			if err := t.Match.Validate(); err != nil {
				return nil, errkind.BadInputf("canary match for %s: %w", name, err)
			}
		}
	}
	return out, nil
}

// VirtualServiceSpec is the spec of the VirtualService that Render writes
// for service under t: the route model itself, for the local gateway to
// route by without rendering the rest. Bad input is an errkind.BadInput error, as
// with Render.
func VirtualServiceSpec(p *config.Project, service string, t Traffic) (*networkingapi.VirtualService, error) {
	s := p.Service(service)
	if s == nil {
		return nil, errkind.BadInputf("unknown service %q (the project has: %s)", service, strings.Join(p.ServiceNames(), ", "))
	}
	traffic, err := Options{Traffic: map[string]Traffic{service: t}}.trafficFor(p)
	if err != nil {
		return nil, err
	}
	return &virtualService(p, s, traffic[service]).Spec, nil
}
