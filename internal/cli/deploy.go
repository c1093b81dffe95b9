package cli

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/build"
	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/output"
	"github.com/spf13/cobra"
)

// DeployOptions are the inputs of `msctl deploy`.
type DeployOptions struct {
	Services []string
	Tag      string
	Images   []string
	Build    bool
	Wait     bool
	Atomic   bool
	Timeout  time.Duration
	DryRun   bool
	NoIstio  bool
	Parallel int
	ChartValues
	// AllowUnsafeEnv is --allow-unsafe-env.
	AllowUnsafeEnv bool
	lock           lockFlags
}

type deployResults []deploy.Result

func (r deployResults) Table() output.TableData {
	t := output.TableData{Header: []string{"SERVICE", "STATE", "REVISION", "IMAGE", "TIME", "MESSAGE"}}
	for _, x := range r {
		rev := ""
		if x.Revision > 0 {
			rev = strconv.Itoa(x.Revision)
		}
		t.Rows = append(t.Rows, []string{x.Service, string(x.State), rev, x.Image, x.Duration.Round(100 * time.Millisecond).String(), x.Message})
	}
	return t
}

type plan []deploy.Change

func (p plan) Text() string {
	var b strings.Builder
	counts := map[string]int{}
	for _, c := range p {
		counts[c.Action]++
		if c.Action == "unchanged" {
			continue
		}
		fmt.Fprintf(&b, "%s %s/%s\n", c.Action, c.Kind, c.Name)
		b.WriteString(c.Diff)
	}
	fmt.Fprintf(&b, "%d to create, %d to update, %d unchanged (dry run: nothing was changed)\n", counts["create"], counts["update"], counts["unchanged"])
	return b.String()
}

// NewCmdDeploy builds `msctl deploy`. runF replaces the run step in tests.
func NewCmdDeploy(f *Factory, runF func(*DeployOptions) error) *cobra.Command {
	opts := &DeployOptions{}
	cmd := &cobra.Command{
		Use:   "deploy [SERVICE...]",
		Short: "Deploy the services to the cluster and wait until they are ready",
		Long: `Deploy renders the project (as msctl render does) and, for each service, installs
or upgrades its Helm release with server-side apply and waits until every
object is ready, then applies its Istio objects. Services go callees first;
independent ones deploy side by side.

A release left pending by an msctl run that is gone (killed, or past its
deadline) is rolled back before the deploy continues; one pending under
another tool (helm, Argo CD, Flux) or a live run is left alone and the
deploy fails, naming it. A service whose chart and values are
unchanged gets no new revision. A running canary's traffic split is kept. On
failure --atomic (the default) rolls the release back, on a deadline of its
own, and the message names the pod that was not ready and why.

Images: --build builds and pushes the services first (as msctl build does)
and deploys them by digest; --image SERVICE=REF pins one service; --tag
names a tag for the others. With none of them, deploy uses the digests of
the last msctl build of the current commit, and refuses if there is none:
a tag such as latest is deployed only when named.

` + lockHelp + `

Exit codes: 0 deployed, 1 failed, 2 bad input, 6 timed out, 7 lock held.`,
		Example: `  # Build, push and deploy everything by digest
  msctl deploy --build

  # The digests of this commit's last msctl build
  msctl deploy

  # Everything, image tag v1.4.2; one service pinned by digest
  msctl deploy --tag v1.4.2 --image order=registry.example.com/order@sha256:...

  # One service, without waiting
  msctl deploy order --tag v1.4.3 --wait=false

  # What would change, changing nothing
  msctl deploy --tag v1.4.3 --dry-run

  # In CI: JSON summary on stdout, plain progress lines on stderr
  msctl deploy --tag "$GIT_SHA" -o json --timeout 10m`,
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = args
			if err := checkTimeout("timeout", opts.Timeout); err != nil {
				return err
			}
			if err := opts.lock.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runDeploy(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Tag, "tag", "", "image tag of the services (default: this commit's build, by digest)")
	fl.StringArrayVar(&opts.Images, "image", nil, "image of one service, SERVICE=REF (repo:tag or repo@sha256:...; repeatable)")
	fl.BoolVar(&opts.Build, "build", false, "build and push the services first, and deploy them by digest")
	fl.BoolVar(&opts.Wait, "wait", true, "wait until every object is ready")
	fl.BoolVar(&opts.Atomic, "atomic", true, "roll a failed release back to its last good revision")
	fl.DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long one service may take to become ready")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "show what would change (server-side dry run), change nothing")
	fl.BoolVar(&opts.NoIstio, "no-istio", false, "skip the Istio objects, for clusters without Istio")
	fl.IntVar(&opts.Parallel, "parallel", 4, "services deployed at once")
	opts.ChartValues.register(cmd)
	allowUnsafeEnvFlag(fl, &opts.AllowUnsafeEnv)
	opts.lock.register(fl)
	return cmd
}

func runDeploy(ctx context.Context, f *Factory, opts *DeployOptions) error {
	if opts.Parallel < 1 {
		return &UsageError{Err: fmt.Errorf("--parallel %d: want at least 1", opts.Parallel)}
	}
	values, err := opts.overlays(opts.AllowUnsafeEnv)
	if err != nil {
		return err
	}
	loaded, err := f.safeProject(opts.Services, opts.AllowUnsafeEnv)
	if err != nil {
		return err
	}
	services := opts.Services
	if len(services) == 0 {
		services = loaded.Project.ServiceNames()
	}
	images, err := f.deployImages(ctx, opts, services)
	if err != nil {
		return err
	}
	d, err := f.Deployments(ctx)
	if err != nil {
		return err
	}
	dopts := deploy.Options{
		Services: opts.Services, ImageTag: opts.Tag, Images: images, Wait: opts.Wait, Timeout: opts.Timeout, Atomic: opts.Atomic,
		NoIstio: opts.NoIstio, Parallel: opts.Parallel, Values: values, Lock: opts.lock.options(),
	}
	if opts.Tag == "" {
		// Every image is pinned; the library's default tag names none of them.
		dopts.Description = "msctl deploy by digest"
	}
	if opts.DryRun {
		changes, err := d.Plan(ctx, dopts)
		if err != nil {
			return err
		}
		return f.Print(plan(changes))
	}
	prog := f.newProgress(services)
	dopts.Progress = prog.Event
	results, err := d.Deploy(ctx, dopts)
	prog.Stop()
	if len(results) > 0 {
		if perr := f.Print(deployResults(results)); perr != nil {
			return perr
		}
	}
	if err == nil && f.Format == output.Table && !f.Quiet() {
		unchanged := 0
		for _, r := range results {
			if r.State == deploy.StateUnchanged {
				unchanged++
			}
		}
		if unchanged == len(results) {
			fmt.Fprintln(f.IO.ErrOut, "Nothing changed: no new revision.")
		}
	}
	return err
}

// deployImages resolves the images to deploy: --image pins, then --build's
// digests, then --tag, then the current commit's recorded build.
func (f *Factory) deployImages(ctx context.Context, opts *DeployOptions, services []string) (map[string]imageref.Ref, error) {
	if opts.Build && opts.Tag != "" {
		return nil, &UsageError{Err: fmt.Errorf("--build and --tag cannot be used together")}
	}
	loaded, err := f.Project()
	if err != nil {
		return nil, err
	}
	p := loaded.Project
	images, err := parseImages(opts.Images, func(s string) bool { return p.Service(s) != nil })
	if err != nil {
		return nil, err
	}
	for _, s := range slices.Sorted(maps.Keys(images)) {
		if !slices.Contains(services, s) {
			return nil, &UsageError{Err: fmt.Errorf("--image %s=...: %s is not among the services being deployed (%s)", s, s, strings.Join(services, ", "))}
		}
	}
	var rest []string
	for _, s := range services {
		if _, ok := images[s]; !ok {
			rest = append(rest, s)
		}
	}
	if len(rest) == 0 || opts.Tag != "" {
		return images, nil
	}
	var more map[string]imageref.Ref
	if opts.Build {
		more, err = f.builtImages(ctx, rest)
	} else {
		more, err = build.Recorded(ctx, filepath.Dir(loaded.File), p.Registry, rest)
	}
	if err != nil {
		return nil, err
	}
	maps.Copy(images, more)
	return images, nil
}
