// Package canary drives a canary: steps, gates, analysis verdicts, promotion,
// rollback, and resuming after a crash. It is one state machine wherever it
// runs, and talks to the world through four small ports: the state Store
// (canarystate), Traffic (weights, A/B matches, mirroring), Releases (the
// stable's and the canary's workloads) and Metrics (analysis over a
// Prometheus HTTP API). Each has a cluster implementation here (Cluster)
// and a local one on the local supervisor's processes, gateway and embedded
// Prometheus engine (Local).
//
// Every transition is written to the state before it is acted on, and
// every write waits for the service's lock: a rerun after kill -9 converges,
// and a driver that lost its lock stops writing at once. It never prints;
// what happens goes out as Events.
package canary
