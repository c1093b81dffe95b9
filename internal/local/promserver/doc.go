// Package promserver is the local runtime's metrics server: Prometheus's own
// scrape manager, TSDB and PromQL engine in one process, scraping the
// gateway and the services every second and serving the query part of
// Prometheus's HTTP API, so internal/analysis queries it exactly as it
// queries a cluster's Prometheus.
//
// It owns its data directory, its scrape loops and its HTTP handler. It must
// never evaluate PromQL itself or write its own scrape parser: every sample
// goes in through Prometheus's scrape package and every answer comes out of
// Prometheus's engine. Nothing here runs at package initialisation: all of
// it is built by Open, so linking the package costs msctl's start-up only
// the library's own init.
package promserver
