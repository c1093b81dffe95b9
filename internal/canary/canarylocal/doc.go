// Package canarylocal holds internal/canary's end-to-end tests on this
// machine: the msctl binary runs the bundled services with msctl up, and
// local canaries of payment run through the real gateway, processes and
// embedded Prometheus engine, under built-in load. It has no code of its
// own.
package canarylocal
