package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canary"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/render"
	"github.com/spf13/cobra"
)

const canaryHelp = `A canary of SERVICE is a second Helm release, SERVICE-canary, of the same
chart (its own Deployment, pods labelled version: canary). The stable release
is not touched until promotion. The VirtualService's split moves step by step;
at every step the metrics are checked against Prometheus, and a failing canary
is rolled back: traffic to 0% first, then the canary release is removed, so
the cluster runs exactly the old spec and the same image can be tried again.
Promotion upgrades the stable release to the canary's image (a normal
revision), then sends all traffic to it and removes the canary.

The cluster holds the canary's state (ConfigMap msctl-canary-SERVICE): a
later CI job, or a rerun after a crash, continues where the last run stopped.
One driver at a time holds the service's Lease, the same one deploy takes.

Steps (msctl.yaml canary.steps, or services[].canary.steps):
  [10, 25, 50, 100]                 shorthand for weight steps
  {weight: N}                       N% of traffic to the canary for one interval
  {pause: 5m}                       wait, analysis still running
  {pause: {}}                       a manual gate: run exits 4 until promoted
  {match: {headers: {x-beta: {exact: "1"}}}, iterations: N}
                                    A/B: matching requests go to the canary
  {mirror: 20}                      20% of traffic mirrored to the canary

Metrics: request-success-rate and request-duration are Flagger's queries on
Istio's standard metrics; custom PromQL templates may use {{ namespace }},
{{ service }}, {{ target }}, {{ stable }} and {{ interval }}. No data is not
failure: an empty result, NaN, or fewer than minRequests requests holds the
weight; after maxNoDataChecks such intervals in a row the canary ends
Inconclusive and is rolled back (onInconclusive: keep leaves it, to promote
or abort). Prometheus errors hold the weight the same way. A canary whose
workload never becomes ready is rolled back.

Decision: by default an anytime-valid sequential test on the request and
error counts (see docs/analysis.md), checked every few seconds: a canary
worse than its threshold is rolled back as soon as the evidence says so with
the configured confidence, and never on evidence that is too thin.
decision: threshold keeps Flagger's rule (a failed interval counts against
maxFailedChecks).

Exit codes: 0 promoted, 1 failure, 2 bad input, 3 rolled back or aborted,
4 paused awaiting approval, 5 inconclusive, 6 timed out, 7 lock held.

` + canaryLocalHelp

// NewCmdCanary builds `msctl canary` and its subcommands.
func NewCmdCanary(f *Factory) *cobra.Command {
	cmd := groupCommand(&cobra.Command{
		Use:   "canary",
		Short: "Run, watch and steer canary releases",
		Long:  "Canary releases of one service at a time, driven from the command line.\n\n" + canaryHelp,
		Example: `  # In CI: start or resume, drive to the end, exit with the outcome
  msctl canary run user --tag v2 --events - --summary "$GITHUB_STEP_SUMMARY"

  # At a terminal
  msctl canary start user --tag v2
  msctl canary status user --watch
  msctl canary promote user`,
	})
	cmd.AddCommand(NewCmdCanaryRun(f, nil), NewCmdCanaryStart(f, nil), NewCmdCanaryStatus(f, nil),
		newCmdCanaryAction(f, canarystate.ActionPromote), newCmdCanaryAction(f, canarystate.ActionPause),
		newCmdCanaryAction(f, canarystate.ActionResume), newCmdCanaryAction(f, canarystate.ActionAbort),
		NewCmdCanaryExplain(f))
	return cmd
}

// canaryImage reads --tag or --image into the image of service.
func canaryImage(f *Factory, service, tag, image string) (imageref.Ref, error) {
	switch {
	case tag != "" && image != "":
		return imageref.Ref{}, &UsageError{Err: fmt.Errorf("--tag and --image cannot be used together")}
	case image != "":
		ref, err := imageref.Parse(image)
		if err != nil {
			return imageref.Ref{}, &UsageError{Err: fmt.Errorf("--image: %v", err)}
		}
		return ref, nil
	case tag != "":
		loaded, err := f.Project()
		if err != nil {
			return imageref.Ref{}, err
		}
		ref := render.ServiceImage(loaded.Project, loaded.Project.Service(service), tag)
		if err := ref.Validate(); err != nil {
			return imageref.Ref{}, &UsageError{Err: fmt.Errorf("--tag %s: %v", tag, err)}
		}
		return ref, nil
	}
	return imageref.Ref{}, nil
}

// clusterDeployer is the cluster connection canaries work through: the
// state store and release operations of the deploy library itself.
func (f *Factory) clusterDeployer(ctx context.Context) (*deploy.Deployer, error) {
	d, err := f.Deployments(ctx)
	if err != nil {
		return nil, err
	}
	dep, ok := d.(*deploy.Deployer)
	if !ok {
		return nil, fmt.Errorf("canaries need a cluster connection")
	}
	return dep, nil
}

// canaryCluster connects to the project's cluster and Prometheus.
func (f *Factory) canaryCluster(ctx context.Context, service, prometheus string, events func(canary.Event)) (*canary.Cluster, error) {
	loaded, err := f.canaryProjectFor([]string{service})
	if err != nil {
		return nil, err
	}
	p := loaded.Project
	if prometheus == "" {
		prometheus = p.Prometheus.Address
	}
	prom, err := analysis.NewPrometheus(prometheus, nil)
	if err != nil {
		return nil, &UsageError{Err: err}
	}
	dep, err := f.clusterDeployer(ctx)
	if err != nil {
		return nil, err
	}
	return &canary.Cluster{
		Deployer: dep, Prometheus: prom, Events: events,
		PlanFor: func(s string) (canary.Plan, error) { return planFor(loaded, s) },
	}, nil
}

// planFor is service's canary plan from the project file, or the problems
// of its canary blocks when they were set aside.
func planFor(loaded *config.Loaded, service string) (canary.Plan, error) {
	if loaded.CanaryErr != nil {
		return canary.Plan{}, loaded.CanaryErr
	}
	return canary.PlanFor(loaded.Project, service)
}

// CanaryRunOptions are the inputs of `msctl canary run`.
type CanaryRunOptions struct {
	Service         string
	Tag, Image      string
	Build           bool
	WaitForApproval bool
	Timeout         time.Duration
	KeepOnTimeout   bool
	Prometheus      string
	Events          string
	Summary         string
	JUnit           string
	AllowUnsafeEnv  bool
	lock            lockFlags
	local           localCanaryFlags
}

// NewCmdCanaryRun builds `msctl canary run`. runF replaces the run step in tests.
func NewCmdCanaryRun(f *Factory, runF func(*CanaryRunOptions) error) *cobra.Command {
	opts := &CanaryRunOptions{}
	cmd := &cobra.Command{
		Use:   "run SERVICE [--tag T | --image REF]",
		Short: "Start or resume a canary and drive it to its end (the command CI calls)",
		Long: `Run starts a canary of SERVICE at --tag or --image when none runs, or resumes the
one that runs, and drives it to a terminal phase. At a manual gate it exits 4
(paused, awaiting approval) unless --wait-for-approval; a later
msctl canary promote, then msctl canary run, carries on. --timeout bounds the
whole canary, less the time a person paused it or no driver ran: past it the
canary is rolled back (unless --keep-on-timeout) and the exit code is 6.

For CI: -o json prints the final state; --events FILE writes one JSON line
per step, check, action and phase change (--events - writes them to stdout
instead of the final state, which is then the last line, of type final); --summary FILE appends a
Markdown summary (fit for $GITHUB_STEP_SUMMARY); --junit FILE writes each
check as a test case. Progress goes to stderr.

` + canaryHelp,
		Example: `  msctl canary run user --tag v2
  msctl canary run user --image registry.example.com/user@sha256:... --timeout 30m
  msctl canary run user --build
  msctl canary run user --tag "$GIT_SHA" -o json --events events.ndjson --junit canary.xml

  # On this machine (after msctl up -d): a faulty payment, rolled back (exit 3)
  msctl canary run payment --local --env FAULT_ERROR_RATE=0.2 --load 100
  # The working tree's payment, or another revision's
  msctl canary run payment --local --load 100
  msctl canary run payment --local --ref v1.2.0 --load 100`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service = args[0]
			if opts.Timeout < 0 {
				return &UsageError{Err: fmt.Errorf("--timeout %s: want a positive duration, or 0 for none", opts.Timeout)}
			}
			if err := opts.lock.validate(); err != nil {
				return err
			}
			if err := opts.local.validate(opts.Tag, opts.Image); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runCanaryRun(cmd.Context(), f, opts, false)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Tag, "tag", "", "image tag of the canary")
	fl.StringVar(&opts.Image, "image", "", "image reference of the canary (repo:tag or repo@sha256:...)")
	fl.BoolVar(&opts.Build, "build", false, "build the canary from the working tree, push it, and canary it by digest")
	fl.BoolVar(&opts.WaitForApproval, "wait-for-approval", false, "wait at manual gates instead of exiting 4")
	fl.DurationVar(&opts.Timeout, "timeout", 0, "bound on the whole canary, from its start, across resumes, less time paused by a person or with no driver (0: none)")
	fl.BoolVar(&opts.KeepOnTimeout, "keep-on-timeout", false, "leave the canary in place when --timeout passes")
	fl.StringVar(&opts.Prometheus, "prometheus", "", "Prometheus HTTP API address (default: the project's prometheus.address)")
	fl.StringVar(&opts.Events, "events", "", "write NDJSON events to FILE (- for stdout)")
	fl.StringVar(&opts.Summary, "summary", "", "append a Markdown summary to FILE")
	fl.StringVar(&opts.JUnit, "junit", "", "write the checks as JUnit XML to FILE")
	allowUnsafeEnvFlag(fl, &opts.AllowUnsafeEnv)
	opts.lock.register(fl)
	opts.local.register(fl, true)
	return cmd
}

// NewCmdCanaryStart builds `msctl canary start`.
func NewCmdCanaryStart(f *Factory, runF func(*CanaryRunOptions) error) *cobra.Command {
	opts := &CanaryRunOptions{}
	cmd := &cobra.Command{
		Use:   "start SERVICE --tag T | --image REF",
		Short: "Start a canary and apply its first step, then return",
		Long: `Start creates a canary of SERVICE, runs its workload and applies the first step,
then returns; msctl canary run (or the dashboard) drives it on.

` + canaryHelp,
		Example: `  msctl canary start user --tag v2
  msctl canary start user --image registry.example.com/user@sha256:...`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service = args[0]
			if err := opts.local.validate(opts.Tag, opts.Image); err != nil {
				return err
			}
			if opts.Tag == "" && opts.Image == "" && !opts.local.Local {
				return &UsageError{Err: fmt.Errorf("give --tag or --image"), Cmd: cmd}
			}
			if err := opts.lock.validate(); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			return runCanaryRun(cmd.Context(), f, opts, true)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&opts.Tag, "tag", "", "image tag of the canary")
	fl.StringVar(&opts.Image, "image", "", "image reference of the canary")
	fl.StringVar(&opts.Prometheus, "prometheus", "", "Prometheus HTTP API address (default: the project's prometheus.address)")
	allowUnsafeEnvFlag(fl, &opts.AllowUnsafeEnv)
	opts.lock.register(fl)
	opts.local.register(fl, false)
	return cmd
}

func runCanaryRun(ctx context.Context, f *Factory, opts *CanaryRunOptions, once bool) error {
	if _, err := f.safeProject([]string{opts.Service}, opts.AllowUnsafeEnv); err != nil {
		return err
	}
	if opts.local.Local {
		return runLocalCanary(ctx, f, opts, once)
	}
	img, err := canaryImage(f, opts.Service, opts.Tag, opts.Image)
	if err != nil {
		return err
	}
	if opts.Build {
		if img.Repository != "" {
			return &UsageError{Err: fmt.Errorf("--build cannot be used with --tag or --image")}
		}
		images, err := f.builtImages(ctx, []string{opts.Service})
		if err != nil {
			return err
		}
		img = images[opts.Service]
	}
	rep, err := newCanaryReport(f, opts.Events, opts.Summary, opts.JUnit)
	if err != nil {
		return err
	}
	defer rep.close()
	c, err := f.canaryCluster(ctx, opts.Service, opts.Prometheus, rep.event)
	if err != nil {
		return err
	}
	o := canary.RunOptions{Image: img, WaitForApproval: opts.WaitForApproval, Timeout: opts.Timeout, KeepOnTimeout: opts.KeepOnTimeout, Once: once}
	st, err := c.Run(ctx, opts.Service, o, opts.lock.options())
	return finishCanaryRun(f, rep, opts, st, err)
}

// finishCanaryRun reports how a run ended, on a cluster or locally.
func finishCanaryRun(f *Factory, rep *canaryReport, opts *CanaryRunOptions, st *canarystate.State, err error) error {
	if st == nil {
		return err // bad input or no connection: nothing ran, nothing to report
	}
	if werr := rep.finish(st, err); werr != nil && err == nil {
		err = werr
	}
	if opts.Events == "-" {
		// stdout is the event stream: the final state is its last line.
		rep.event(canary.Event{Time: time.Now(), Service: st.Service, Type: "final", Phase: st.Phase, Step: st.Step, Message: st.Reason})
		return err
	}
	if perr := f.Print(canaryStates{st}); perr != nil && err == nil {
		err = perr
	}
	return err
}

// CanaryStatusOptions are the inputs of `msctl canary status`.
type CanaryStatusOptions struct {
	Services []string
	Watch    bool
	Timeout  time.Duration
	Local    bool
}

// NewCmdCanaryStatus builds `msctl canary status`.
func NewCmdCanaryStatus(f *Factory, runF func(*CanaryStatusOptions) error) *cobra.Command {
	opts := &CanaryStatusOptions{}
	cmd := &cobra.Command{
		Use:   "status [SERVICE...]",
		Short: "Show each canary's phase, step, weights, images and last checks",
		Long: `Status reads each service's canary from the cluster (with --local, from
.msctl/run/canary, whether or not msctl up still runs): phase, step, weights,
canary and stable images, the last check of each metric (value against
threshold), and which process drives it since when. Without --watch it exits
0 when the state could be read. With --watch it follows the canary and ends at
a terminal phase or a pause, with that phase's exit code (0 succeeded, 3
rolled back or aborted, 4 paused, 5 inconclusive, 6 when --timeout passes).`,
		Example: `  msctl canary status
  msctl canary status user --watch --timeout 30m -o json`,
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			return runCanaryStatus(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Watch, "watch", false, "follow until the canary ends or pauses")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 0, "with --watch, give up after this long (exit 6)")
	cmd.Flags().BoolVar(&opts.Local, "local", false, "read the canaries run on this machine (.msctl/run/canary)")
	return cmd
}

func runCanaryStatus(ctx context.Context, f *Factory, opts *CanaryStatusOptions) error {
	loaded, err := f.canaryProjectFor(opts.Services)
	if err != nil {
		return err
	}
	services := opts.Services
	if len(services) == 0 {
		services = loaded.Project.ServiceNames()
	}
	store, err := f.canaryStores(ctx, opts.Services, opts.Local)
	if err != nil {
		return err
	}
	read := func() (canaryStates, error) {
		var out canaryStates
		for _, s := range services {
			st, _, err := store(s).Load(ctx)
			if err != nil {
				return nil, err
			}
			if st != nil {
				out = append(out, st)
			}
		}
		return out, nil
	}
	if !opts.Watch {
		states, err := read()
		if err != nil {
			return err
		}
		return f.Print(states)
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	// Watch the canaries that are open now: with no services named, an
	// old ending of another service must not decide the exit code.
	first, err := read()
	if err != nil {
		return err
	}
	var watched []string
	for _, st := range first {
		if st.Open() || len(opts.Services) > 0 {
			watched = append(watched, st.Service)
		}
	}
	if len(watched) == 0 {
		return &UsageError{Err: fmt.Errorf("no canary to watch: none is in progress")}
	}
	services = watched
	for {
		states, err := read()
		if err != nil {
			return err
		}
		done := len(states) > 0
		for _, st := range states {
			if !st.Phase.Terminal() && st.Phase != canarystate.Paused {
				done = false
			}
		}
		if done {
			if err := f.Print(states); err != nil {
				return err
			}
			for _, st := range states {
				if out := canary.Outcome(st); out != nil {
					return out
				}
			}
			return nil
		}
		select {
		case <-ctx.Done():
			_ = f.Print(states)
			if ctx.Err() == context.DeadlineExceeded {
				return &canary.OutcomeError{Service: services[0], Phase: canarystate.Progressing, TimedOut: true,
					Reason: fmt.Sprintf("still in progress after --timeout %s", opts.Timeout)}
			}
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// newCmdCanaryAction builds promote, pause, resume or abort.
func newCmdCanaryAction(f *Factory, action canarystate.Action) *cobra.Command {
	var full, onLocal bool
	var lock lockFlags
	var prometheus string
	short := map[canarystate.Action]string{
		canarystate.ActionPromote: "Pass the canary's gate (or, with --full, promote it now)",
		canarystate.ActionPause:   "Pause a canary: the weight stays until resume",
		canarystate.ActionResume:  "Resume a paused canary",
		canarystate.ActionAbort:   "Abort a canary: traffic back to stable, canary removed",
	}[action]
	cmd := &cobra.Command{
		Use:   string(action) + " SERVICE",
		Short: short,
		Long: short + `.

A running driver (msctl canary run in another process) takes the request
within a second; with none running, this command takes the service's lock
and carries the action out itself. A later msctl canary run carries on.`,
		Example:           fmt.Sprintf("  msctl canary %s user", action),
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := lock.validate(); err != nil {
				return err
			}
			var st *canarystate.State
			var err error
			if onLocal {
				st, err = actLocal(cmd.Context(), f, args[0], action, full)
			} else {
				var c *canary.Cluster
				if c, err = f.canaryCluster(cmd.Context(), args[0], prometheus, nil); err != nil {
					return err
				}
				st, err = c.Act(cmd.Context(), args[0], action, full, lock.options())
			}
			if err != nil {
				return err
			}
			return f.Print(canaryStates{st})
		},
	}
	if action == canarystate.ActionPromote {
		cmd.Flags().BoolVar(&full, "full", false, "skip the remaining steps and analysis")
	}
	cmd.Flags().StringVar(&prometheus, "prometheus", "", "Prometheus HTTP API address (default: the project's prometheus.address)")
	cmd.Flags().BoolVar(&onLocal, "local", false, "act on the canary run on this machine")
	lock.register(cmd.Flags())
	return cmd
}

// NewCmdCanaryExplain builds `msctl canary explain`.
func NewCmdCanaryExplain(f *Factory) *cobra.Command {
	var onLocal bool
	cmd := &cobra.Command{
		Use:   "explain SERVICE",
		Short: fmt.Sprintf("The checks of the current or last canary (the last %d), and why it decided what it did", canarystate.MaxChecks),
		Long: `Explain lists the checks of SERVICE's current or last canary in order: metric,
resolved query, window, value, threshold, requests, decision and why.`,
		Example:           "  msctl canary explain user\n  msctl canary explain user -o json",
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := f.canaryStores(cmd.Context(), args, onLocal)
			if err != nil {
				return err
			}
			st, _, err := store(args[0]).Load(cmd.Context())
			if err != nil {
				return err
			}
			if st == nil {
				return &UsageError{Err: fmt.Errorf("service %s has had no canary", args[0])}
			}
			return f.Print(explanation{st})
		},
	}
	cmd.Flags().BoolVar(&onLocal, "local", false, "explain the canary run on this machine")
	return cmd
}

// canaryStores are the services' canary states: in the cluster, or in the
// run directory with --local.
func (f *Factory) canaryStores(ctx context.Context, services []string, onLocal bool) (func(string) canarystate.Store, error) {
	if onLocal {
		return f.localStateStores(services)
	}
	if _, err := f.canaryProjectFor(services); err != nil {
		return nil, err
	}
	dep, err := f.clusterDeployer(ctx)
	if err != nil {
		return nil, err
	}
	return func(s string) canarystate.Store { return dep.StateStore(s) }, nil
}
