package render

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	"helm.sh/helm/v4/pkg/chart/common"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// PinRoute names the VirtualService route that sends requests carrying
// CanaryHeader to the canary while one runs.
const PinRoute = "pin-canary"

// CanaryWeight reads the canary's share of traffic back from a
// VirtualService as a cluster stores it: the canary subset's weight on the
// first route that is not the pin; 0 when there is none. What render writes
// from Options.CanaryWeights, this reads, so a redeploy keeps a running
// canary's split.
func CanaryWeight(vs *unstructured.Unstructured) int {
	if vs == nil {
		return 0
	}
	routes, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
	for _, r := range routes {
		route, _ := r.(map[string]any)
		if route["name"] == PinRoute {
			continue
		}
		dests, _, _ := unstructured.NestedSlice(route, "route")
		for _, dst := range dests {
			m, _ := dst.(map[string]any)
			if subset, _, _ := unstructured.NestedString(m, "destination", "subset"); subset == CanarySubset {
				w, _, _ := unstructured.NestedInt64(m, "weight")
				return int(w)
			}
		}
	}
	return 0
}

// Istio returns one service's Istio objects, which msctl applies itself
// outside Helm; the project's own (gateway, mesh policies) are not among
// them.
func (r *Result) Istio(service string) []Object {
	return slices.DeleteFunc(slices.Clone(r.Objects), func(o Object) bool {
		return o.Source != SourceIstio || o.Service != service
	})
}

// ChartDigest identifies the embedded service chart: a hash of its files,
// so a release deployed from another chart is not taken as unchanged.
func ChartDigest() (string, error) { return chartDigest() }

var chartDigest = sync.OnceValues(func() (string, error) {
	ch, err := ServiceChart()
	if err != nil {
		return "", err
	}
	files := slices.Clone(ch.Raw)
	slices.SortFunc(files, func(a, b *common.File) int { return strings.Compare(a.Name, b.Name) })
	h := sha256.New()
	for _, f := range files {
		h.Write([]byte(f.Name))
		h.Write([]byte{0})
		h.Write(f.Data)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
})
