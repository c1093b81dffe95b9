// Package manifests embeds the Helm chart and monitoring files that msctl
// renders, so the binary needs nothing on disk. The files stay plain chart
// sources: `helm template manifests/charts/service` works on them as-is.
// This package holds files only, never logic.
package manifests

import "embed"

// Charts holds charts/<name>/..., including the _helpers.tpl partials.
//
//go:embed all:charts
var Charts embed.FS

// Monitoring holds the Grafana dashboard shipped as a ConfigMap.
//
//go:embed monitoring
var Monitoring embed.FS

// ServiceChart is the path of the bundled services' chart inside Charts.
const ServiceChart = "charts/service"
