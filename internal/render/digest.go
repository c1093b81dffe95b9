package render

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"sync"

	"helm.sh/helm/v4/pkg/chart/common"
)

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
