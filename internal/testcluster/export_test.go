package testcluster

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
