package config

import (
	"slices"
	"strings"

	"github.com/msctl/msctl/internal/errkind"
)

// The calls graph: which services call which (Service.Calls). Validation
// refuses a cycle in it; deploy, msctl up and canary trains order services
// by it, through Closure and Levels, so that a service's callees are up
// before it starts calling them.

// Closure is the named services with every service they call, directly or
// not, each after the services it calls, ties in the project's order. No
// names means every service. An unknown name is bad input.
func (p *Project) Closure(names []string) ([]string, error) {
	if len(names) == 0 {
		names = p.ServiceNames()
	}
	want := map[string]bool{}
	var add func(name string)
	add = func(name string) {
		s := p.Service(name)
		if want[name] || s == nil {
			return
		}
		want[name] = true
		for _, c := range s.Calls {
			add(c)
		}
	}
	for _, n := range names {
		if p.Service(n) == nil {
			return nil, p.unknownService(n)
		}
		add(n)
	}
	return p.order(want), nil
}

// Levels groups the named services (every service when none is named; an
// unknown name is left out) so that each comes after every named service
// it calls, directly or through services that are not named: the services
// of one level do not depend on each other and may run side by side. Each
// level is in the project's order.
func (p *Project) Levels(names []string) [][]string {
	if len(names) == 0 {
		names = p.ServiceNames()
	}
	named := map[string]bool{}
	for _, n := range names {
		if p.Service(n) != nil {
			named[n] = true
		}
	}
	// depth is the number of named services on the longest chain of calls
	// below a service. Memoised; validation has ruled out cycles, and a
	// service being visited counts as depth 0 should one remain.
	depth := map[string]int{}
	var below func(name string) int
	below = func(name string) int {
		if d, ok := depth[name]; ok {
			return d
		}
		depth[name] = 0
		d := 0
		for _, c := range p.Service(name).Calls {
			if p.Service(c) == nil {
				continue
			}
			step := 0
			if named[c] {
				step = 1
			}
			d = max(d, below(c)+step)
		}
		depth[name] = d
		return d
	}
	var out [][]string
	for _, n := range p.order(named) {
		l := below(n)
		for len(out) <= l {
			out = append(out, nil)
		}
		out[l] = append(out[l], n)
	}
	return slices.DeleteFunc(out, func(level []string) bool { return len(level) == 0 })
}

// order lists the services in set, each after the services it calls, ties
// in the project's order.
func (p *Project) order(set map[string]bool) []string {
	var out []string
	placed := map[string]bool{}
	var place func(name string)
	place = func(name string) {
		if placed[name] {
			return
		}
		placed[name] = true
		for _, c := range p.Service(name).Calls {
			if set[c] && p.Service(c) != nil {
				place(c)
			}
		}
		out = append(out, name)
	}
	for _, n := range p.ServiceNames() {
		if set[n] {
			place(n)
		}
	}
	return out
}

func (p *Project) unknownService(name string) error {
	return errkind.BadInputf("unknown service %q (the project has %s)", name, strings.Join(p.ServiceNames(), ", "))
}

// findCycle returns one cycle in the calls graph, first name repeated last,
// or nil.
func findCycle(services []Service) []string {
	calls := map[string][]string{}
	for _, s := range services {
		calls[s.Name] = s.Calls
	}
	const (
		unvisited = iota
		inProgress
		done
	)
	state := map[string]int{}
	var stack []string
	var visit func(string) []string
	visit = func(n string) []string {
		state[n] = inProgress
		stack = append(stack, n)
		for _, m := range calls[n] {
			if m == n {
				continue // reported as "calls itself"
			}
			switch state[m] {
			case inProgress:
				start := slices.Index(stack, m)
				return append(slices.Clone(stack[start:]), m)
			case unvisited:
				if _, declared := calls[m]; declared {
					if c := visit(m); c != nil {
						return c
					}
				}
			}
		}
		stack = stack[:len(stack)-1]
		state[n] = done
		return nil
	}
	for _, s := range services {
		if state[s.Name] == unvisited {
			if c := visit(s.Name); c != nil {
				return c
			}
		}
	}
	return nil
}
