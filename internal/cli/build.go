package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/build"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/output"
	"github.com/spf13/cobra"
)

// BuildOptions are the inputs of `msctl build`.
type BuildOptions struct {
	Services  []string
	Platforms string
	Registry  string
	OCILayout string
}

type buildResults []build.Result

func (r buildResults) Table() output.TableData {
	t := output.TableData{Header: []string{"SERVICE", "PLATFORMS", "IMAGE", "SIZE", "STATE", "MESSAGE"}}
	for _, x := range r {
		size := ""
		if x.Size > 0 {
			size = fmt.Sprintf("%.1f MiB", float64(x.Size)/(1<<20))
		}
		msg, _, _ := strings.Cut(x.Message, "\n")
		t.Rows = append(t.Rows, []string{x.Service, strings.Join(x.Platforms, ","), x.Ref, size, string(x.State), msg})
	}
	return t
}

// NewCmdBuild builds `msctl build`. runF replaces the run step in tests.
func NewCmdBuild(f *Factory, runF func(*BuildOptions) error) *cobra.Command {
	opts := &BuildOptions{}
	cmd := &cobra.Command{
		Use:   "build [SERVICE...]",
		Short: "Build the services' images and push them by digest",
		Long: `Build compiles each service (services[].path) as a static Go binary for every
--platform, side by side up to the number of cores, and makes an OCI image of
it on a base layer msctl writes itself: a non-root user 65532, /tmp and a
pinned set of CA roots. No container daemon and no base image are needed.
The platforms' images go under one index with an SPDX SBOM attached, and
are pushed to the project's registry (--registry overrides) by digest, or
written to an OCI layout with --oci-layout.

The same commit gives the same digests on any machine: every timestamp is
SOURCE_DATE_EPOCH, or else the commit's time. An unchanged service is
neither compiled nor pushed again. msctl deploy, run without --tag or
--image, deploys the digests of this commit's last build.

Registries on localhost or a loopback address are spoken to over plain
HTTP; credentials come from the docker config (~/.docker/config.json and
its credential helpers).

Exit codes: 0 built, 1 a service did not build or push, 2 bad input,
130 interrupted.`,
		Example: `  # Every service, for linux/amd64 and linux/arm64, pushed to the project's registry
  msctl build

  # One service for one platform, to another registry
  msctl build order --platform linux/arm64 --registry ghcr.io/acme

  # No registry: an OCI layout on disk
  msctl build --oci-layout ./images

  # In CI: JSON on stdout, the digests to deploy
  msctl build -o json`,
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			return runBuild(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Platforms, "platform", "linux/amd64,linux/arm64", "platforms to build, comma-separated")
	fl.StringVar(&opts.Registry, "registry", "", "registry to push to (default: the project's registry)")
	fl.StringVar(&opts.OCILayout, "oci-layout", "", "write an OCI image layout to this directory instead of pushing")
	return cmd
}

func runBuild(ctx context.Context, f *Factory, opts *BuildOptions) error {
	platforms, err := build.ParsePlatforms(opts.Platforms)
	if err != nil {
		return &UsageError{Err: fmt.Errorf("--platform: %w", err)}
	}
	results, err := f.build(ctx, build.Options{Services: opts.Services, Platforms: platforms, Registry: opts.Registry, OCILayout: opts.OCILayout})
	if len(results) > 0 {
		if perr := f.Print(buildResults(results)); perr != nil {
			return perr
		}
	}
	return err
}

// build runs a build of the project with progress on stderr.
func (f *Factory) build(ctx context.Context, o build.Options) ([]build.Result, error) {
	loaded, err := f.projectFor(o.Services)
	if err != nil {
		return nil, err
	}
	o.Project, o.Dir = loaded.Project, filepath.Dir(loaded.File)
	if !f.Quiet() {
		o.Progress = func(e build.Event) {
			line := fmt.Sprintf("%s %-12s %s", time.Now().UTC().Format(time.RFC3339), e.Service, e.State)
			if e.Message != "" {
				line += ": " + e.Message
			}
			fmt.Fprintln(f.IO.ErrOut, line)
		}
	}
	return build.Build(ctx, o)
}

// builtImages builds and pushes services for a deploy or a canary and
// returns their images by digest.
func (f *Factory) builtImages(ctx context.Context, services []string) (map[string]imageref.Ref, error) {
	results, err := f.build(ctx, build.Options{Services: services})
	if err != nil {
		return nil, err
	}
	images := map[string]imageref.Ref{}
	for _, r := range results {
		images[r.Service] = r.Image
	}
	return images, nil
}

// parseImages reads --image SERVICE=REF flags.
func parseImages(values []string, known func(string) bool) (map[string]imageref.Ref, error) {
	images := map[string]imageref.Ref{}
	for _, v := range values {
		service, ref, ok := strings.Cut(v, "=")
		if !ok {
			return nil, &UsageError{Err: fmt.Errorf("--image %s: want SERVICE=REF", v)}
		}
		if !known(service) {
			return nil, &UsageError{Err: fmt.Errorf("--image %s: unknown service %q", v, service)}
		}
		r, err := imageref.Parse(ref)
		if err != nil {
			return nil, &UsageError{Err: fmt.Errorf("--image %s: %v", v, err)}
		}
		images[service] = r
	}
	return images, nil
}
