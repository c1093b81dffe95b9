// Package local runs a project on one machine, without a cluster: it
// builds the services' binaries into a run directory, starts each as a
// process on SQLite with its own ports, keys and logs, restarts crashed
// ones, and composes the local gateway (internal/local/gateway) and the
// embedded metrics engine (internal/local/promserver) around them under one
// supervisor. The supervisor serves a control API on loopback; Client is
// its Go client, used by the commands and by local canaries.
//
// Everything a later process needs (process ids with their start times,
// ports, specs) is recorded atomically in the run directory, so Down finds
// and stops every process even after the supervisor was killed. Processes
// are only ever signalled by recorded id, checked against their start time,
// never by name.
//
// The package never reads flags or prints to a terminal: the command line
// hands options in and decides how logs and results look.
package local
