// Package analysis owns a canary's metric analysis: the PromQL of its
// checks (Flagger's built-in queries on Istio's standard metrics, custom
// templates, the counts the sequential test needs), their validation with
// Prometheus's own parser, a Prometheus API client, and the decisions: pure
// functions from samples to pass, fail, hold, no-data or error, each with the
// reason. Live canaries, explain and replay call the same decision functions.
//
// It knows Prometheus and PromQL and nothing of Kubernetes: it must never
// import client-go, Helm, kube, deploy or render, never change a canary's
// state, and never hand-parse PromQL.
package analysis
