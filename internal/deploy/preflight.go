package deploy

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/msctl/msctl/internal/kube"
	"helm.sh/helm/v4/pkg/chart/common"
)

// istioAPIs are the Istio APIs the rendered objects use.
var istioAPIs = []string{"networking.istio.io/v1", "security.istio.io/v1", "telemetry.istio.io/v1"}

// PreflightError lists what the cluster or the user lacks; nothing has been
// written when it is returned.
type PreflightError struct{ Problems []string }

func (e *PreflightError) Error() string {
	return "preflight: " + strings.Join(e.Problems, "; ")
}

// Preflight checks, before anything is written, that the cluster serves the
// Istio APIs (unless noIstio) and that the user may create and change what
// a deploy needs.
func (d *Deployer) Preflight(ctx context.Context, noIstio bool) error {
	_, err := d.preflight(ctx, noIstio)
	return err
}

// preflight is Preflight returning what it discovered, which rendering and
// Helm need too: the chart's optional objects follow the APIs, and Helm
// would otherwise rediscover them for every service.
func (d *Deployer) preflight(ctx context.Context, noIstio bool) (*common.Capabilities, error) {
	var problems []string
	caps, err := d.capabilities(ctx)
	if err != nil {
		return nil, err
	}
	apis := caps.APIVersions
	if !noIstio {
		for _, gv := range istioAPIs {
			if !slices.Contains(apis, gv) {
				problems = append(problems, fmt.Sprintf("the cluster does not serve %s: install Istio's CRDs, or deploy with --no-istio", gv))
			}
		}
	}
	ns := d.Project.Namespace
	perms := []kube.Permission{{Verb: "get", Resource: "namespaces"}, {Verb: "patch", Resource: "namespaces"}}
	for _, r := range []struct{ group, resource string }{
		{"", "services"}, {"", "serviceaccounts"}, {"", "configmaps"}, {"", "secrets"},
		{"apps", "deployments"}, {"autoscaling", "horizontalpodautoscalers"}, {"policy", "poddisruptionbudgets"},
		{"networking.k8s.io", "networkpolicies"}, {"coordination.k8s.io", "leases"},
	} {
		for _, verb := range []string{"get", "create", "patch", "delete"} {
			perms = append(perms, kube.Permission{Verb: verb, Group: r.group, Resource: r.resource, Namespace: ns})
		}
	}
	if !noIstio {
		for _, r := range []struct{ group, resource string }{
			{"networking.istio.io", "virtualservices"}, {"networking.istio.io", "destinationrules"}, {"networking.istio.io", "gateways"},
			{"security.istio.io", "authorizationpolicies"}, {"security.istio.io", "peerauthentications"},
			{"security.istio.io", "requestauthentications"}, {"telemetry.istio.io", "telemetries"},
		} {
			perms = append(perms, kube.Permission{Verb: "patch", Group: r.group, Resource: r.resource, Namespace: ns})
		}
	}
	missing, err := d.Cluster.MissingPermissions(ctx, perms)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		problems = append(problems, describeMissing(missing, ns))
	}
	if len(problems) > 0 {
		return nil, &PreflightError{Problems: problems}
	}
	return caps, nil
}

// capabilities discovers what the cluster serves and its version, for
// rendering and Helm: preflight's first half, all that a write under a lock
// already checked needs.
func (d *Deployer) capabilities(ctx context.Context) (*common.Capabilities, error) {
	apis, err := d.Cluster.APIVersions(ctx)
	if err != nil {
		return nil, err
	}
	sv, err := d.Cluster.Clientset.Discovery().ServerVersion()
	if err != nil {
		return nil, fmt.Errorf("reading the cluster's version: %w", err)
	}
	return &common.Capabilities{
		APIVersions: apis,
		KubeVersion: common.KubeVersion{Version: sv.GitVersion, Major: sv.Major, Minor: sv.Minor},
		HelmVersion: common.DefaultCapabilities.HelmVersion,
	}, nil
}

// describeMissing groups denied permissions by the verbs denied, so a user
// with no rights at all reads one short line, not forty.
func describeMissing(missing []kube.Permission, ns string) string {
	verbs := map[string][]string{} // resource -> verbs denied
	var order []string
	for _, m := range missing {
		res := m.Resource
		if m.Group != "" {
			res += "." + m.Group
		}
		if m.Namespace == "" {
			res += " (cluster-wide)"
		}
		if _, ok := verbs[res]; !ok {
			order = append(order, res)
		}
		verbs[res] = append(verbs[res], m.Verb)
	}
	byVerbs := map[string][]string{}
	var groups []string
	for _, res := range order {
		v := strings.Join(verbs[res], "/")
		if _, ok := byVerbs[v]; !ok {
			groups = append(groups, v)
		}
		byVerbs[v] = append(byVerbs[v], res)
	}
	var parts []string
	for _, v := range groups {
		parts = append(parts, v+" "+strings.Join(byVerbs[v], ", "))
	}
	return fmt.Sprintf("you may not %s (namespace %s)", strings.Join(parts, "; "), ns)
}
