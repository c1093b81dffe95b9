package testcluster

import (
	"context"
	"io"
	"os"
	"time"
)

// Options tune a control plane. The zero value is what tests want.
type Options struct {
	// CacheDir holds the built binaries and the CRD files, keyed by version.
	// Default: ${XDG_CACHE_HOME:-$HOME/.cache}/msctl/testcluster.
	CacheDir string
	// Nodes is how many kwok nodes to create. Default 1.
	Nodes int
	// StartTimeout bounds a start once the binaries are built. Default 60s:
	// a warm start takes a few seconds, but a loaded CI machine may be slow.
	StartTimeout time.Duration
	// AllCRDs also installs the Prometheus Operator CRDs of the operator's
	// own workloads (Prometheus, Alertmanager, ThanosRuler, ...). By default
	// only those an application ships (ServiceMonitor, PodMonitor, Probe,
	// PrometheusRule) are installed: the others are 4 of the 5 MB of CRD
	// schemas and would double the start time.
	AllCRDs bool
	// Log receives progress messages, such as a first-run build. Default os.Stderr.
	Log io.Writer
}

func (o Options) withDefaults() (Options, error) {
	if o.CacheDir == "" {
		dir, err := defaultCacheDir()
		if err != nil {
			return o, err
		}
		o.CacheDir = dir
	}
	if o.Nodes <= 0 {
		o.Nodes = 1
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	if o.Log == nil {
		o.Log = os.Stderr
	}
	return o, nil
}

// prepared is what Prepare leaves in the cache.
type prepared struct {
	bin    string // dir with the binaries
	assets string // dir with the CRDs and kwok stages
}

// Prepare builds the binaries and fetches the CRDs into the cache unless they
// are there already, so that CI can pay for the first build in a step of its
// own. Start calls it too.
func Prepare(ctx context.Context, opts Options) error {
	opts, err := opts.withDefaults()
	if err != nil {
		return err
	}
	_, err = prepare(ctx, opts)
	return err
}

func prepare(ctx context.Context, opts Options) (prepared, error) {
	bin, err := ensureBinaries(ctx, opts.CacheDir, opts.Log)
	if err != nil {
		return prepared{}, err
	}
	assets, err := ensureAssets(ctx, opts.CacheDir, opts.Log)
	if err != nil {
		return prepared{}, err
	}
	return prepared{bin: bin, assets: assets}, nil
}
