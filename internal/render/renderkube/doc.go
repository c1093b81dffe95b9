// Package renderkube holds internal/render's tests against a real control
// plane (internal/testcluster) and the helm CLI: the API server accepts what
// render produces, and `helm template` of the chart agrees with it. It has
// no code of its own, so `go test ./internal/render/` stays fast and needs
// no cluster.
package renderkube
