package kube

// canInspectProcesses says /proc tells whether a process runs and when it
// started, so a Lease of a dead local process can be taken at once.
const canInspectProcesses = true
