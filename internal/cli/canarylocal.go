package cli

import (
	"archive/tar"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/canary"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/local"
	"github.com/msctl/msctl/internal/local/load"
	"github.com/msctl/msctl/internal/routes"
	"github.com/spf13/pflag"
)

const canaryLocalHelp = `With --local the canary runs on this machine, under the supervisor msctl up
started: the canary is a second process of the service, the local gateway
moves the weights, the embedded Prometheus engine analyses it with the same
checks, and the state is in .msctl/run/canary/SERVICE.json. Its "image" is
local/SERVICE@sha256:..., a digest of the binary and its --env overrides.
The steps are the project's; the interval is --interval (default 5s), so a
canary ends within a minute.`

// localInterval is a local canary's default analysis interval: a laptop's
// built-in load gives enough requests in seconds.
const localInterval = 5 * time.Second

// localCanaryFlags are the flags of a canary on this machine.
type localCanaryFlags struct {
	Local    bool
	Ref      string
	Env      []string
	Load     float64
	Interval time.Duration
}

func (l *localCanaryFlags) register(fl *pflag.FlagSet, run bool) {
	fl.BoolVar(&l.Local, "local", false, "run the canary on this machine, under msctl up's supervisor")
	fl.StringVar(&l.Ref, "ref", "", "with --local: build the canary from this git revision instead of the working tree")
	fl.StringArrayVar(&l.Env, "env", nil, "with --local: an environment override K=V of the canary (repeatable); without --ref, the canary is the stable's build with it")
	fl.DurationVar(&l.Interval, "interval", 0, "with --local: the analysis interval (default 5s)")
	if run {
		fl.Float64Var(&l.Load, "load", 0, fmt.Sprintf("with --local: send built-in load through the gateway at this many requests a second (at most %d) while the canary runs", load.MaxRate))
	}
}

// validate checks the flags against each other and against --tag/--image.
func (l *localCanaryFlags) validate(tag, image string) error {
	if !l.Local {
		for name, set := range map[string]bool{"--ref": l.Ref != "", "--env": len(l.Env) > 0, "--load": l.Load != 0, "--interval": l.Interval != 0} {
			if set {
				return &UsageError{Err: fmt.Errorf("%s needs --local", name)}
			}
		}
		return nil
	}
	if tag != "" || image != "" {
		return &UsageError{Err: fmt.Errorf("--tag and --image are for a cluster; with --local the canary is built from the working tree, --ref or --env")}
	}
	if _, err := parseEnv(l.Env); err != nil {
		return err
	}
	if !(l.Load >= 0 && l.Load <= load.MaxRate) { // NaN too
		return &UsageError{Err: fmt.Errorf("--load %g: want 0 (none) up to %d requests a second", l.Load, load.MaxRate)}
	}
	if l.Interval != 0 && l.Interval < time.Second {
		return &UsageError{Err: fmt.Errorf("--interval %s: want at least 1s", l.Interval)}
	}
	return nil
}

func parseEnv(kvs []string) (map[string]string, error) {
	env := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.ContainsAny(k, " \t") {
			return nil, &UsageError{Err: fmt.Errorf("--env %q: want KEY=VALUE", kv)}
		}
		env[k] = v
	}
	return env, nil
}

// localCanaries connects to the local supervisor of the project: the
// driver's ports and the gateway's address for load.
func (f *Factory) localCanaries(ctx context.Context, service string, interval time.Duration, events func(canary.Event)) (*canary.Local, *local.Client, *local.Status, error) {
	lp, err := f.localCanaryProject([]string{service})
	if err != nil {
		return nil, nil, nil, err
	}
	p := lp.opts.Project
	plan := func(s string) (canary.Plan, error) {
		plan, err := planFor(lp.loaded, s)
		return plan.WithInterval(cmp.Or(interval, localInterval)), err
	}
	client, err := local.Connect(lp.runDir)
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := client.Status(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	prom, err := analysis.NewPrometheus(st.MetricsURL, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	return &canary.Local{RunDir: lp.runDir, Processes: localProcesses{client}, Prometheus: prom, Namespace: p.Namespace,
		PlanFor: plan, Events: events}, client, st, nil
}

// localProcesses adapts the supervisor's client to the local ports.
type localProcesses struct{ c *local.Client }

func (l localProcesses) SetTraffic(ctx context.Context, service string, t routes.Traffic) error {
	return l.c.SetTraffic(ctx, service, t)
}

func (l localProcesses) Stable(ctx context.Context, service string) (canary.Process, error) {
	s, err := l.c.Stable(ctx, service)
	return canary.Process{Binary: s.Binary, Env: s.Env, Revision: s.Revision}, err
}

func (l localProcesses) StartCanary(ctx context.Context, service string, p canary.Process) error {
	return l.c.StartCanary(ctx, service, local.ProcessSpec{Binary: p.Binary, Env: p.Env, Revision: p.Revision})
}

func (l localProcesses) StopCanary(ctx context.Context, service string) error {
	return l.c.StopCanary(ctx, service)
}

func (l localProcesses) Promote(ctx context.Context, service string) error {
	return l.c.Promote(ctx, service)
}

// localCanaryImage builds what the canary runs and records it as an
// image: the stable's build with --env overrides, a build of --ref, or a
// build of the working tree.
func (f *Factory) localCanaryImage(ctx context.Context, lc *canary.Local, client *local.Client, service string, fl *localCanaryFlags) (imageref.Ref, error) {
	lp, err := f.localProject([]string{service})
	if err != nil {
		return imageref.Ref{}, err
	}
	svc, root := lp.opts.Project.Service(service), lp.root
	env, _ := parseEnv(fl.Env)
	var proc canary.Process
	switch {
	case fl.Ref != "":
		src, err := os.MkdirTemp("", "msctl-ref-*")
		if err != nil {
			return imageref.Ref{}, err
		}
		defer os.RemoveAll(src)
		if err := checkout(ctx, root, fl.Ref, src); err != nil {
			return imageref.Ref{}, err
		}
		f.Log.Info("building the canary", "service", service, "ref", fl.Ref)
		bin, err := client.BuildService(ctx, service, filepath.Join(src, svc.Path))
		if err != nil {
			return imageref.Ref{}, err
		}
		defer os.Remove(bin) // kept as the image's copy
		proc = canary.Process{Binary: bin, Env: env, Revision: fl.Ref}
	case len(env) > 0:
		stable, err := client.Stable(ctx, service)
		if err != nil {
			return imageref.Ref{}, err
		}
		merged := maps.Clone(stable.Env)
		if merged == nil {
			merged = map[string]string{}
		}
		maps.Copy(merged, env)
		keys := slices.Sorted(maps.Keys(env))
		for i, k := range keys {
			keys[i] = k + "=" + env[k]
		}
		proc = canary.Process{Binary: stable.Binary, Env: merged, Revision: "stable with " + strings.Join(keys, " ")}
	default:
		f.Log.Info("building the canary from the working tree", "service", service)
		bin, err := client.BuildService(ctx, service, filepath.Join(root, svc.Path))
		if err != nil {
			return imageref.Ref{}, err
		}
		proc = canary.Process{Binary: bin, Revision: "working tree"}
	}
	return lc.Image(service, proc)
}

// checkout writes the tree of git revision ref of the repository at root
// into dir.
func checkout(ctx context.Context, root, ref, dir string) error {
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "rev-parse", "--verify", "--quiet", ref+"^{commit}").Output(); err != nil || len(out) == 0 {
		return &UsageError{Err: fmt.Errorf("--ref %s: not a commit of the git repository at %s", ref, root)}
	}
	cmd := exec.CommandContext(ctx, "git", "-C", root, "archive", "--format=tar", ref)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("--ref %s: %w", ref, err)
	}
	xerr := untar(out, dir)
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		return &UsageError{Err: fmt.Errorf("--ref %s: git archive: %s", ref, strings.TrimSpace(stderr.String()))}
	}
	return xerr
}

func untar(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		path := filepath.Join(dir, filepath.FromSlash(h.Name))
		if !strings.HasPrefix(path, filepath.Clean(dir)+string(filepath.Separator)) {
			continue // nothing outside dir
		}
		switch h.Typeflag {
		case tar.TypeDir:
			err = os.MkdirAll(path, 0o755)
		case tar.TypeReg:
			err = writeFrom(path, tr, os.FileMode(h.Mode)&0o777)
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, path)
		}
		if err != nil {
			return err
		}
	}
}

func writeFrom(path string, r io.Reader, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(w, r); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// localHolder is who this process is, in local locks and requests.
func localHolder() kube.Holder { return kube.CurrentHolder(os.Getenv("MSCTL_HOLDER"), os.Getenv) }

// runLocalCanary is canary run and start with --local.
func runLocalCanary(ctx context.Context, f *Factory, opts *CanaryRunOptions, once bool) error {
	rep, err := newCanaryReport(f, opts.Events, opts.Summary, opts.JUnit)
	if err != nil {
		return err
	}
	defer rep.close()
	lc, client, status, err := f.localCanaries(ctx, opts.Service, opts.local.Interval, rep.event)
	if err != nil {
		return err
	}
	// An image only to start a canary: a rerun resumes the one in progress.
	var img imageref.Ref
	if cur, _, err := lc.Store(opts.Service).Load(ctx); err != nil {
		return err
	} else if cur == nil || !cur.Open() {
		if img, err = f.localCanaryImage(ctx, lc, client, opts.Service, &opts.local); err != nil {
			return err
		}
	}
	stopLoad := func() {}
	if opts.local.Load > 0 {
		stopLoad, err = startLoad(ctx, f, lc.RunDir, status.GatewayURL, opts.local.Load)
		if err != nil {
			return err
		}
	}
	o := canary.RunOptions{Image: img, WaitForApproval: opts.WaitForApproval, Timeout: opts.Timeout, KeepOnTimeout: opts.KeepOnTimeout, Once: once}
	st, err := lc.Run(ctx, opts.Service, o, localHolder())
	stopLoad()
	return finishCanaryRun(f, rep, opts, st, err)
}

// startLoad sends built-in load through the gateway until the returned
// stop is called, which then tells what it sent.
func startLoad(ctx context.Context, f *Factory, runDir, gateway string, rate float64) (stop func(), err error) {
	key, err := os.ReadFile(local.AdminKeyFile(runDir))
	if err != nil {
		return nil, fmt.Errorf("the run's API key: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w, err := load.Run(ctx, load.Options{Target: gateway, APIKey: strings.TrimSpace(string(key)), Rate: rate})
		if err != nil {
			f.Log.Warn("built-in load stopped", "err", err)
			return
		}
		f.Log.Info("built-in load", "requests", w.Requests, "errors", w.Errors, "p95ms", w.P95)
	}()
	return func() { cancel(); <-done }, nil
}

// localStateStores reads the canary state files of the project's run
// directory; no supervisor needs to run.
func (f *Factory) localStateStores(services []string) (func(string) canarystate.Store, error) {
	lp, err := f.localCanaryProject(services)
	if err != nil {
		return nil, err
	}
	return (&canary.Local{RunDir: lp.runDir}).Store, nil
}

// actLocal is promote, pause, resume and abort with --local.
func actLocal(ctx context.Context, f *Factory, service string, action canarystate.Action, full bool) (*canarystate.State, error) {
	lc, _, _, err := f.localCanaries(ctx, service, 0, nil)
	if err != nil {
		return nil, err
	}
	return lc.Act(ctx, service, action, full, localHolder())
}
