// Package canarykube holds internal/canary's tests against a real control
// plane (internal/testcluster) and a real Prometheus (internal/promtest):
// every scenario of a canary, the crash tests and two drivers at once. It
// has no code of its own.
package canarykube
