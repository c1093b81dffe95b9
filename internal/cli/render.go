package cli

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/msctl/msctl/internal/atomicfile"
	"github.com/msctl/msctl/internal/output"
	"github.com/msctl/msctl/internal/render"
	"github.com/spf13/cobra"
)

// RenderOptions are the inputs of `msctl render`.
type RenderOptions struct {
	Services []string
	OutDir   string
	ChartValues
	KubeVersion   string
	APIVersions   []string
	CanaryWeights []string
	ImageTag      string
	// AllowUnsafeEnv is --allow-unsafe-env.
	AllowUnsafeEnv bool
}

// NewCmdRender builds `msctl render`. runF replaces the run step in tests.
func NewCmdRender(f *Factory, runF func(*RenderOptions) error) *cobra.Command {
	opts := &RenderOptions{}
	cmd := &cobra.Command{
		Use:   "render [SERVICE...]",
		Short: "Print every Kubernetes and Istio object the project needs",
		Long: `Render the project in-process, with no helm or kubectl binary: the service
chart (Deployment, Service, ServiceAccount, ConfigMap, autoscalers, disruption
budget, network policy, and monitoring objects when the API exists), the Istio
rules (Gateway, VirtualService, DestinationRule, PeerAuthentication,
AuthorizationPolicy, RequestAuthentication, Telemetry) and the Grafana
dashboard. The output is deterministic: the same input gives the same bytes.

Deploy and every canary step render through the same code, so this shows
exactly what they apply. --set and -f override chart values like helm does;
--kube-version and --api-versions stand in for a cluster like helm template.`,
		Example: `  # Everything, as one YAML stream
  msctl render

  # Two services, with 20% of their traffic on the canary
  msctl render order payment --canary-weight 20

  # One file per service and kind, with monitoring objects
  msctl render --out build/manifests --api-versions monitoring.coreos.com/v1/PrometheusRule

  # Chart overrides for every service
  msctl render --set autoscaling.maxReplicas=20 -f overrides.yaml`,
		ValidArgsFunction: completeServices(f),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			return runRender(f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.OutDir, "out", "", "write one file per service and kind into this directory instead of stdout; files an earlier render wrote there and this one does not are removed")
	opts.ChartValues.register(cmd)
	fl.StringVar(&opts.KubeVersion, "kube-version", "", "Kubernetes version to render for, as helm template --kube-version")
	fl.StringSliceVar(&opts.APIVersions, "api-versions", nil, "extra API versions the cluster serves, e.g. monitoring.coreos.com/v1/ServiceMonitor")
	fl.StringArrayVar(&opts.CanaryWeights, "canary-weight", nil, "canary traffic in percent: N for every selected service, or SERVICE=N")
	fl.StringVar(&opts.ImageTag, "tag", "latest", "image tag of every service")
	allowUnsafeEnvFlag(fl, &opts.AllowUnsafeEnv)
	_ = cmd.MarkFlagDirname("out")
	return cmd
}

func runRender(f *Factory, opts *RenderOptions) error {
	loaded, err := f.safeProject(opts.Services, opts.AllowUnsafeEnv)
	if err != nil {
		return err
	}
	p := loaded.Project
	ropts := render.Options{
		Services:    opts.Services,
		ImageTag:    opts.ImageTag,
		KubeVersion: opts.KubeVersion,
		APIVersions: opts.APIVersions,
	}
	targets := opts.Services
	if len(targets) == 0 {
		targets = p.ServiceNames()
	}
	if ropts.CanaryWeights, err = parseCanaryWeights(opts.CanaryWeights, targets); err != nil {
		return err
	}
	if ropts.Values, err = opts.overlays(opts.AllowUnsafeEnv); err != nil {
		return err
	}
	res, err := render.Render(p, ropts)
	if err != nil {
		return err
	}
	if opts.OutDir != "" {
		var covered []string
		if len(opts.Services) > 0 {
			covered = opts.Services
		}
		written, removed, err := writeRendered(res, p.Name, opts.OutDir, covered)
		for _, path := range removed {
			f.Log.Info("removed a file an earlier render wrote", "path", path)
		}
		if err != nil {
			return err
		}
		return f.Print(written)
	}
	if f.Format == output.JSON {
		items := make([]any, len(res.Objects))
		for i, o := range res.Objects {
			items[i] = o.Object
		}
		return f.Print(map[string]any{"apiVersion": "v1", "kind": "List", "items": items})
	}
	y, err := res.YAML()
	if err != nil {
		return err
	}
	_, err = f.IO.Out.Write(y)
	return err
}

// parseCanaryWeights reads "N" (every target) and "SERVICE=N" entries.
func parseCanaryWeights(entries, targets []string) (map[string]int, error) {
	weights := map[string]int{}
	for _, e := range entries {
		name, value, perService := strings.Cut(e, "=")
		if !perService {
			value = name
		}
		w, err := strconv.Atoi(value)
		if err != nil || w < 0 || w > 100 {
			return nil, &UsageError{Err: fmt.Errorf("--canary-weight %s: want a weight from 0 to 100, or SERVICE=WEIGHT", e)}
		}
		if !perService {
			for _, t := range targets {
				weights[t] = w
			}
			continue
		}
		if !slices.Contains(targets, name) {
			return nil, &UsageError{Err: fmt.Errorf("--canary-weight %s: %q is not a service being rendered (%s)", e, name, strings.Join(targets, ", "))}
		}
		weights[name] = w
	}
	return weights, nil
}

func unwrapPathError(err error) error {
	if pe, ok := err.(*os.PathError); ok {
		return pe.Err
	}
	return err
}

// renderedFile is one file --out wrote.
type renderedFile struct {
	Path    string `json:"path"`
	Objects int    `json:"objects"`
}

type renderedFiles []renderedFile

func (r renderedFiles) Table() output.TableData {
	t := output.TableData{Header: []string{"FILE", "OBJECTS"}}
	for _, f := range r {
		t.Rows = append(t.Rows, []string{f.Path, strconv.Itoa(f.Objects)})
	}
	return t
}

// renderedHeader starts every file `render --out` writes. It tells a reader
// not to edit the file, and is how a later render knows the file is msctl's
// to replace or remove.
const renderedHeader = "# Generated by msctl render. Do not edit.\n"

// renderedOwner is the header's second line: which project and service (or
// "-" for the project's own objects) the file holds, so a render removes
// only files of its own project and of the services it covers.
const renderedOwner = "# project: %s, service: %s\n"

// writeRendered writes <service>-<kind>.yaml files (project-wide objects
// under the project's name), then removes the files an earlier render wrote
// that this one did not, so dir holds exactly this render for `kubectl apply
// -f`. Everything is encoded before anything is written, each file is
// written atomically, and the directory is synced after the removals.
//
// services are the services the render covers; nil means all of the
// project's, and then files of services the project no longer has go too.
func writeRendered(res *render.Result, project, dir string, services []string) (written renderedFiles, removed []string, err error) {
	groups := map[string]*render.Result{}
	owners := map[string]string{}
	var order []string
	for _, o := range res.Objects {
		owner := o.Service
		if owner == "" {
			owner = project
		}
		name := fmt.Sprintf("%s-%s.yaml", owner, strings.ToLower(o.GetKind()))
		if groups[name] == nil {
			groups[name] = &render.Result{}
			order = append(order, name)
			owners[name] = cmp.Or(o.Service, "-")
		}
		groups[name].Objects = append(groups[name].Objects, o)
	}
	data := make(map[string][]byte, len(order))
	for _, name := range order {
		y, err := groups[name].YAML()
		if err != nil {
			return nil, nil, err
		}
		data[name] = append([]byte(renderedHeader+fmt.Sprintf(renderedOwner, project, owners[name])), y...)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, nil, &UsageError{Err: fmt.Errorf("--out %s: %v", dir, unwrapPathError(err))}
	}
	for _, name := range order {
		path := filepath.Join(dir, name)
		if err := atomicfile.Write(path, data[name], 0o644); err != nil {
			return nil, nil, fmt.Errorf("writing %s: %w", path, err)
		}
		written = append(written, renderedFile{Path: path, Objects: len(groups[name].Objects)})
	}
	covered := func(service string) bool {
		return services == nil || service == "-" || slices.Contains(services, service)
	}
	removed, err = removeStale(dir, data, project, covered)
	return written, removed, err
}

// removeStale removes the *.yaml files in dir that start with
// renderedHeader, belong to project and to a service covered, and are not
// among this render's files. A file without the header is somebody else's,
// or from an msctl that wrote none, and stays; so do another project's,
// and those of services this render left out.
func removeStale(dir string, current map[string][]byte, project string, covered func(service string) bool) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--out %s: %v", dir, unwrapPathError(err))
	}
	var removed []string
	for _, e := range entries {
		if _, ok := current[e.Name()]; ok || !e.Type().IsRegular() || filepath.Ext(e.Name()) != ".yaml" {
			continue
		}
		path := filepath.Join(dir, e.Name())
		ours, owner, err := writtenByRender(path)
		if err != nil {
			return removed, fmt.Errorf("reading %s: %w", path, err)
		}
		if !ours || owner != fmt.Sprintf(renderedOwner, project, ownerService(owner)) || !covered(ownerService(owner)) {
			continue
		}
		if err := os.Remove(path); err != nil {
			return removed, fmt.Errorf("removing %s, which an earlier render wrote: %w", path, err)
		}
		removed = append(removed, path)
	}
	if len(removed) == 0 {
		return nil, nil
	}
	return removed, atomicfile.SyncDir(dir)
}

// writtenByRender reports whether the file at path starts with
// renderedHeader.
func writtenByRender(path string) (ours bool, owner string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, "", err
	}
	defer f.Close()
	r := bufio.NewReader(io.LimitReader(f, 4096))
	first, err := r.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, "", err
	}
	if first != renderedHeader {
		return false, "", nil
	}
	owner, _ = r.ReadString('\n')
	return true, owner, nil
}

// ownerService is the service an owner line names.
func ownerService(owner string) string {
	_, service, _ := strings.Cut(strings.TrimSuffix(owner, "\n"), ", service: ")
	return service
}
