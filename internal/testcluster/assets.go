package testcluster

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
)

// Layout of an assets cache entry.
const (
	assetsCRDDir   = "crds"
	assetsStageDir = "stages"
)

// kwokStages are the stage files taken from the kwok module: nodes become
// Ready and stay so, pods become Running and Ready, Job pods complete and
// deleted pods go away. The pod-ready stage is amended at start (see stages.go).
var kwokStages = []string{
	"kustomize/stage/node/fast/node-initialize.yaml",
	"kustomize/stage/node/heartbeat/node-heartbeat.yaml",
	"kustomize/stage/pod/fast/pod-ready.yaml",
	"kustomize/stage/pod/fast/pod-complete.yaml",
	"kustomize/stage/pod/fast/pod-delete.yaml",
}

func assetsKey() string {
	return fmt.Sprintf("assets-%s-istioapi%s-promop%s-vpa%s-kwok%s",
		buildRecipe, IstioAPIVersion, PrometheusOperatorVersion, VPAVersion, KwokVersion)
}

// ensureAssets returns the cache entry holding the CRDs and kwok stages,
// copied out of the module cache so that a warm start needs no go command.
func ensureAssets(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	return cacheEntry(ctx, cacheDir, assetsKey(), log, func(ctx context.Context, dir string) error {
		fmt.Fprintf(log, "testcluster: fetching CRDs and kwok stages from the Go module cache\n")
		work, err := os.MkdirTemp("", "msctl-testcluster-assets-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(work)
		infos, err := downloadModules(ctx, work,
			modIstioAPI+"@"+IstioAPIVersion,
			modPrometheusOperator+"@"+PrometheusOperatorVersion,
			modVPA+"@"+VPAVersion,
			modKwok+"@"+KwokVersion,
		)
		if err != nil {
			return fmt.Errorf("fetch CRDs and kwok stages: %w", err)
		}
		istio, promop, vpa, kwok := infos[0].Dir, infos[1].Dir, infos[2].Dir, infos[3].Dir

		crds := filepath.Join(dir, assetsCRDDir)
		copies := map[string]string{
			filepath.Join(istio, "kubernetes", "customresourcedefinitions.gen.yaml"): filepath.Join(crds, "istio.yaml"),
			filepath.Join(vpa, "deploy", "vpa-v1-crd-gen.yaml"):                      filepath.Join(crds, "vpa.yaml"),
		}
		promFiles, err := filepath.Glob(filepath.Join(promop, "example", "prometheus-operator-crd", "*.yaml"))
		if err != nil || len(promFiles) == 0 {
			return fmt.Errorf("fetch CRDs: no Prometheus Operator CRDs in %s", promop)
		}
		for _, f := range promFiles {
			copies[f] = filepath.Join(crds, "prometheus-operator-"+filepath.Base(f))
		}
		for _, s := range kwokStages {
			copies[filepath.Join(kwok, filepath.FromSlash(s))] = stageFile(dir, s)
		}
		for from, to := range copies {
			if err := copyFile(from, to); err != nil {
				return fmt.Errorf("fetch CRDs and kwok stages: %w", err)
			}
		}
		return nil
	})
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	// Files in the module cache are read-only; the copies need not be.
	return os.WriteFile(to, data, 0o644)
}

// applicationMonitoringCRDs are the Prometheus Operator CRDs installed by
// default: the ones an application ships next to its Deployment.
var applicationMonitoringCRDs = []string{"servicemonitors", "podmonitors", "probes", "prometheusrules"}

// crdFiles lists the CRD manifests of an assets entry to install; see
// Options.AllCRDs.
func crdFiles(assets string, all bool) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(assets, assetsCRDDir, "*.yaml"))
	if err != nil {
		return nil, err
	}
	var keep []string
	for _, f := range files {
		name, isPromOp := strings.CutPrefix(filepath.Base(f), "prometheus-operator-monitoring.coreos.com_")
		if all || !isPromOp || slices.Contains(applicationMonitoringCRDs, strings.TrimSuffix(name, ".yaml")) {
			keep = append(keep, f)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("no CRD files in %s", assets)
	}
	return keep, nil
}

// stageFile is where the kwok stage at modulePath is kept in an assets entry.
func stageFile(assets, modulePath string) string {
	return filepath.Join(assets, assetsStageDir, path.Base(modulePath))
}
