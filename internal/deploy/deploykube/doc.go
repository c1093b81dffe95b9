// Package deploykube holds internal/deploy's tests against a real control
// plane (internal/testcluster): releases, locks, recovery and the helm CLI
// on msctl's releases. It has no code of its own, so `go test
// ./internal/deploy/` stays fast and needs no cluster.
package deploykube
