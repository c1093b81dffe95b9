package testcluster

import (
	"maps"
	"time"
)

// ComponentPIDs returns the pids of the running components, which are also
// their process group ids, so the tests can check that Stop ends them all.
func (c *Cluster) ComponentPIDs() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	pids := make(map[string]int, len(c.components))
	for _, comp := range c.components {
		pids[comp.name] = comp.pgid()
	}
	return pids
}

// StartSteps returns when each start step was done, measured from the start
// of the cluster's processes (after the binaries were found in the cache).
func (c *Cluster) StartSteps() map[string]time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.ready)
}

// RunMain is Main without os.Exit, with any Run method standing in for the tests.
func RunMain(m interface{ Run() int }, c **Cluster, opts Options) int {
	return run(m, c, opts)
}
