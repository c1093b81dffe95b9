// Package routes is msctl's route model: how one service's requests reach
// it, inside the mesh and from the project's ingress gateway, and how a
// canary takes its share of them (a weight, an A/B match, a mirror, a pin
// header). Each traffic backend turns the model into its own objects, one
// file per backend, as Flagger's router does: Istio's VirtualService and
// DestinationRules here; the local gateway routes by the same Istio
// objects. It has no Helm in it, so render, the canary driver and the
// local gateway share it without the renderer.
package routes
