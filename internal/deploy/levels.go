package deploy

import (
	"slices"

	"github.com/msctl/msctl/internal/config"
)

// levels groups the selected services so that every service comes after
// the services it calls: a service's dependencies are up before it starts
// calling them. Services within a level are independent and deploy side by
// side. Calls to services outside the selection are ignored. Config
// validation has ruled out cycles.
func levels(p *config.Project, selected []string) [][]string {
	remaining := slices.Clone(selected)
	done := map[string]bool{}
	var out [][]string
	for len(remaining) > 0 {
		var level []string
		for _, name := range remaining {
			ready := true
			for _, callee := range p.Service(name).Calls {
				if slices.Contains(selected, callee) && !done[callee] {
					ready = false
					break
				}
			}
			if ready {
				level = append(level, name)
			}
		}
		if len(level) == 0 { // unreachable for a validated project
			level = remaining
		}
		for _, name := range level {
			done[name] = true
		}
		remaining = slices.DeleteFunc(remaining, func(n string) bool { return done[n] })
		out = append(out, level)
	}
	return out
}
