// Package lint checks a project beyond what its file's schema can: the chart
// lints cleanly with each service's values, every service's source exists,
// and every Istio route points at a host, subset and gateway that exist. It
// reads the project and the embedded chart; it never talks to a cluster.
package lint

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/render"
	"github.com/msctl/msctl/manifests"
	helmlint "helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// Severity of a finding.
type Severity string

// Severities, mildest first. Only errors fail a lint.
const (
	Info    Severity = "info"
	Warning Severity = "warning"
	Error   Severity = "error"
)

// Finding is one thing lint has to say.
type Finding struct {
	Severity Severity `json:"severity"`
	// Subject is what the finding is about: a service, an object, a file.
	Subject string `json:"subject"`
	Message string `json:"message"`
}

// Project lints p, whose file lives in dir (service paths are relative to it).
func Project(p *config.Project, dir string) ([]Finding, error) {
	var out []Finding
	for _, s := range p.Services {
		src := filepath.Join(dir, s.Path)
		if fi, err := os.Stat(src); err != nil || !fi.IsDir() {
			out = append(out, Finding{Error, "service " + s.Name, fmt.Sprintf("source directory %s does not exist", s.Path)})
		}
	}
	chartFindings, err := lintChart(p)
	if err != nil {
		return nil, err
	}
	out = append(out, chartFindings...)

	res, err := render.Render(p, render.Options{})
	if errkind.Of(err) == errkind.BadInput {
		return append(out, Finding{Error, "values", err.Error()}), nil
	}
	if err != nil {
		return nil, err
	}
	return append(out, checkRoutes(res)...), nil
}

// lintChart runs Helm's chart linter with each service's values. The linter
// reads a directory, so the embedded chart is written to a temporary one.
func lintChart(p *config.Project) ([]Finding, error) {
	tmp, err := os.MkdirTemp("", "msctl-lint-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	chartFS, err := fs.Sub(manifests.Charts, manifests.ServiceChart)
	if err != nil {
		return nil, err
	}
	if err := os.CopyFS(filepath.Join(tmp, "service"), chartFS); err != nil {
		return nil, fmt.Errorf("unpacking the chart: %w", err)
	}
	var out []Finding
	seen := map[string]bool{}
	for _, s := range p.Services {
		l := helmlint.RunAll(filepath.Join(tmp, "service"), render.ChartValues(p, &s, "latest"), p.Namespace)
		for _, m := range l.Messages {
			// Findings about the chart itself repeat for every service.
			key := fmt.Sprintf("%d %s %v", m.Severity, m.Path, m.Err)
			if seen[key] {
				continue
			}
			seen[key] = true
			sev := Info
			switch m.Severity {
			case support.ErrorSev:
				sev = Error
			case support.WarningSev:
				sev = Warning
			}
			out = append(out, Finding{sev, "chart (values of " + s.Name + ")", fmt.Sprintf("%s: %v", m.Path, m.Err)})
		}
	}
	return out, nil
}

// checkRoutes finds VirtualService routes to hosts, subsets or gateways
// that nothing defines: Istio accepts them and then drops the traffic.
func checkRoutes(res *render.Result) []Finding {
	subsets := map[string][]string{} // host -> subsets of its DestinationRule
	gateways := []string{"mesh"}
	for _, o := range res.Objects {
		switch o.GetKind() {
		case "DestinationRule":
			host, _, _ := unstructured.NestedString(o.Object, "spec", "host")
			if subsets[host] == nil {
				subsets[host] = []string{} // defined, with or without subsets
			}
			list, _, _ := unstructured.NestedSlice(o.Object, "spec", "subsets")
			for _, s := range list {
				name, _, _ := unstructured.NestedString(s.(map[string]any), "name")
				subsets[host] = append(subsets[host], name)
			}
		case "Gateway":
			gateways = append(gateways, o.GetName())
		}
	}
	var out []Finding
	for _, o := range res.Objects {
		if o.GetKind() != "VirtualService" {
			continue
		}
		subject := "VirtualService " + o.GetName()
		gws, _, _ := unstructured.NestedStringSlice(o.Object, "spec", "gateways")
		for _, g := range gws {
			if !slices.Contains(gateways, g) {
				out = append(out, Finding{Error, subject, fmt.Sprintf("gateway %q is not defined", g)})
			}
		}
		routes, _, _ := unstructured.NestedSlice(o.Object, "spec", "http")
		for _, r := range routes {
			route := r.(map[string]any)
			dests, _, _ := unstructured.NestedSlice(route, "route")
			for _, d := range dests {
				host, _, _ := unstructured.NestedString(d.(map[string]any), "destination", "host")
				subset, _, _ := unstructured.NestedString(d.(map[string]any), "destination", "subset")
				known, ok := subsets[host]
				switch {
				case !ok:
					out = append(out, Finding{Error, subject, fmt.Sprintf("route %v sends traffic to host %s, which no DestinationRule defines", route["name"], host)})
				case subset != "" && !slices.Contains(known, subset):
					out = append(out, Finding{Error, subject, fmt.Sprintf("route %v sends traffic to subset %q of %s, which is not defined (have %v)", route["name"], subset, host, known)})
				}
			}
		}
	}
	return out
}

// Failed reports whether any finding is an error.
func Failed(findings []Finding) bool {
	return slices.ContainsFunc(findings, func(f Finding) bool { return f.Severity == Error })
}
