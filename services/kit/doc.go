// Package kit is the small set of packages every bundled msctl service
// (user, order, inventory, payment) is built on. Each subpackage owns one
// concern: host (the wiring every service shares, from environment to
// drain), command (the shared main), server (listeners and graceful stop),
// grpcchain and httpchain (the interceptor and middleware order), auth,
// metrics, tracing, health, downstream (outbound clients with breakers),
// experiments, fault, config, storage (and storage/storetest), paging,
// requestid, validation, buildinfo, logging and gateway; loadgen and
// host/hosttest serve the services' benchmarks and tests only.
//
// The kit is a library, not a framework: it never exits the process, never
// reads flags, and never imports msctl's internal packages.
package kit
