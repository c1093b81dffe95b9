//go:build !linux

package kube

// canInspectProcesses is false where there is no /proc: a Lease of a dead
// local process lapses after its TTL like any other.
const canInspectProcesses = false
