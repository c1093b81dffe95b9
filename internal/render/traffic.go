package render

import (
	"maps"
	"slices"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/routes"
)

// trafficFor merges Options.CanaryWeights (the shorthand: a weight alone)
// into Options.Traffic, and checks every entry: one code path for both.
func (o Options) trafficFor(p *config.Project) (map[string]routes.Traffic, error) {
	out := make(map[string]routes.Traffic, len(o.Traffic)+len(o.CanaryWeights))
	// Sorted, so that of several bad entries the same one is reported.
	for _, name := range slices.Sorted(maps.Keys(o.CanaryWeights)) {
		w := o.CanaryWeights[name]
		if p.Service(name) == nil {
			return nil, errkind.BadInputf("canary weight for unknown service %q", name)
		}
		out[name] = routes.Traffic{Weight: w}
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
		if err := out[name].Validate(name); err != nil {
			return nil, err
		}
	}
	return out, nil
}
