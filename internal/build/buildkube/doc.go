// Package buildkube holds the tests that deploy what msctl build pushed onto
// the test control plane (internal/testcluster); it has no code of its own.
package buildkube
