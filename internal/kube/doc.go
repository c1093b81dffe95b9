// Package kube owns msctl's conversation with a Kubernetes API server:
// reading kubeconfigs and connecting (with errors that name the context and
// server), server-side apply of any object, permission checks for
// preflight, and the per-service Lease locks with the holder identity that
// names a run in them.
//
// It knows nothing of msctl's projects, charts or canaries, and nothing in it
// runs at start-up: callers ask when they need a cluster, so `msctl version`
// and `--help` never read a kubeconfig.
package kube
