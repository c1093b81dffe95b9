package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/local"
	"github.com/msctl/msctl/internal/logtail"
	"github.com/msctl/msctl/internal/output"
	"github.com/spf13/cobra"
)

// UpOptions are the inputs of `msctl up`.
type UpOptions struct {
	Services []string
	Detach   bool
	NoBuild  bool
	PortBase int
	Timeout  time.Duration
	Parallel int
	// supervisor marks the detached supervisor's own process: it runs
	// without building and reports its start on file descriptor 3.
	supervisor bool
}

// localTable is the local runtime's status, for up and status --local.
type localTable struct{ *local.Status }

func (s localTable) MarshalJSON() ([]byte, error) { return json.Marshal(s.Status) }

func (s localTable) Text() string {
	var b strings.Builder
	t := output.TableData{Header: []string{"SERVICE", "TRACK", "PID", "HTTP", "GRPC", "ADMIN", "MESH", "READY", "RESTARTS", "REVISION", "TRAFFIC"}}
	for _, svc := range s.Services {
		for _, in := range []struct {
			track string
			in    *local.Instance
		}{{"stable", svc.Stable}, {"canary", svc.Canary}} {
			if in.in == nil {
				continue
			}
			ready := "no"
			if in.in.Ready {
				ready = "yes"
			}
			traffic := fmt.Sprintf("%d%%", 100-svc.Traffic.Weight)
			if in.track == "canary" {
				traffic = fmt.Sprintf("%d%%", svc.Traffic.Weight)
				if svc.Traffic.Match != nil {
					traffic += " + match"
				}
				if svc.Traffic.Mirror > 0 {
					traffic += fmt.Sprintf(" + mirror %d%%", svc.Traffic.Mirror)
				}
			}
			rev := in.in.Spec.Revision
			if rev == "" {
				rev = "-"
			}
			t.Rows = append(t.Rows, []string{svc.Name, in.track, strconv.Itoa(in.in.PID), strconv.Itoa(in.in.Ports.HTTP), strconv.Itoa(in.in.Ports.GRPC),
				strconv.Itoa(in.in.Ports.Admin), strconv.Itoa(svc.MeshPort), ready, strconv.Itoa(in.in.Restarts), rev, traffic})
		}
	}
	_ = output.Write(&b, output.Table, tableData(t), output.Options{})
	fmt.Fprintf(&b, "\ngateway:  %s\nmetrics:  %s/api/v1/query\nrun dir:  %s\n", s.GatewayURL, s.MetricsURL, s.RunDir)
	return b.String()
}

// tableData prints a table built in place.
type tableData output.TableData

func (t tableData) Table() output.TableData { return output.TableData(t) }

// NewCmdUp builds `msctl up`. runF replaces the run step in tests.
func NewCmdUp(f *Factory, runF func(*UpOptions) error) *cobra.Command {
	opts := &UpOptions{}
	cmd := &cobra.Command{
		Use:   "up [SERVICE...]",
		Short: "Run the services on this machine, with a gateway and metrics, no cluster",
		Long: `Up builds each service (go build) and runs it as a process on SQLite, with its
data, logs and keys under .msctl/run at the project root. In front of them
runs a gateway with the project's routes and canary traffic rules, and an
embedded Prometheus engine that scrapes the gateway and every service each
second; local canaries (msctl canary run --local) use both.

Ports are fixed from a base (--port-base): the gateway on the base, the
metrics API on base+1, then ten per service in msctl.yaml's order. Every
port is checked before anything starts. Services start callees first, each
gated on its /health/ready; one that fails to start is named with the last
lines of its log. Services call each other through the gateway, so canary
splits apply to their calls too. A service that crashes is restarted with
backoff, and the restart is reported.

Up runs in the foreground, showing every service's log lines, until Ctrl-C.
With -d it returns once everything is ready and leaves a supervisor running;
stop it with msctl down.

Exit codes: 0 ready (or stopped cleanly), 1 a service failed to start or up
already runs here, 2 bad input (a taken port, an unknown service).`,
		Example: `  # Everything, in the foreground
  msctl up

  # In the background; then look, and stop
  msctl up -d
  msctl status --local
  msctl logs order -f
  msctl down

  # Only order and the services it calls, on other ports
  msctl up -d order --port-base 21000 -o json`,
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = args
			if err := checkTimeout("timeout", opts.Timeout); err != nil {
				return err
			}
			if opts.Parallel < 1 {
				return &UsageError{Err: fmt.Errorf("--parallel must be at least 1, got %d", opts.Parallel), Cmd: cmd}
			}
			if runF != nil {
				return runF(opts)
			}
			return runUp(cmd.Context(), f, opts)
		},
	}
	fl := cmd.Flags()
	fl.BoolVarP(&opts.Detach, "detach", "d", false, "return once everything is ready, leaving a supervisor running")
	fl.BoolVar(&opts.NoBuild, "no-build", false, "use the binaries already built in the run directory")
	fl.IntVar(&opts.PortBase, "port-base", local.DefaultPortBase, "first port of the local runtime's fixed layout")
	fl.DurationVar(&opts.Timeout, "timeout", 30*time.Second, "how long each service may take to become ready")
	fl.IntVar(&opts.Parallel, "parallel", 4, "services built at once")
	fl.BoolVar(&opts.supervisor, "supervisor", false, "run as the detached supervisor (used by up -d)")
	_ = fl.MarkHidden("supervisor")
	return cmd
}

// localProject loads the project and names its run directory.
func (f *Factory) localProject(services []string) (*localContext, error) {
	return newLocalContext(f.projectFor(services))
}

// localCanaryProject is localProject with the canary blocks' problems left
// in Loaded.CanaryErr (see projectExceptCanary).
func (f *Factory) localCanaryProject(services []string) (*localContext, error) {
	return newLocalContext(f.canaryProjectFor(services))
}

func newLocalContext(loaded *config.Loaded, err error) (*localContext, error) {
	if err != nil {
		return nil, err
	}
	root, err := filepath.Abs(filepath.Dir(loaded.File))
	if err != nil {
		return nil, err
	}
	return &localContext{loaded: loaded, file: loaded.File, root: root, runDir: local.RunDir(root), opts: local.Options{Project: loaded.Project, Root: root}}, nil
}

type localContext struct {
	loaded             *config.Loaded
	file, root, runDir string
	opts               local.Options
}

func runUp(ctx context.Context, f *Factory, o *UpOptions) error {
	lc, err := f.localProject(o.Services)
	if err != nil {
		return err
	}
	lc.opts.RunDir, lc.opts.PortBase, lc.opts.Services, lc.opts.ReadyTimeout = lc.runDir, o.PortBase, o.Services, o.Timeout
	if err := local.CheckPortBase(o.PortBase, len(lc.opts.Project.Services)); err != nil {
		return err
	}
	if o.supervisor {
		return superviseDetached(ctx, f, lc)
	}
	if c, err := local.Connect(lc.runDir); err == nil {
		if st, err := c.Status(ctx); err == nil {
			return fmt.Errorf("msctl up is already running in %s (supervisor pid %d); stop it with msctl down", lc.runDir, st.Supervisor)
		}
	}
	// In the foreground, progress reads like the services' log lines.
	lines := newLinePrinter(f)
	say := func(msg string) {
		if f.Quiet() {
			return
		}
		if o.Detach {
			fmt.Fprintln(f.IO.ErrOut, msg)
			return
		}
		lines.line("msctl", msg)
	}
	if !o.NoBuild {
		if err := buildLocal(ctx, lc, o.Parallel, say); err != nil {
			return err
		}
	}
	if o.Detach {
		st, err := startDetached(ctx, lc, o)
		if err != nil {
			return err
		}
		return f.Print(localTable{st})
	}
	return runForeground(ctx, f, lc, lines, say)
}

func buildLocal(ctx context.Context, lc *localContext, parallel int, say func(string)) error {
	names, err := lc.opts.Project.Closure(lc.opts.Services)
	if err != nil {
		return err
	}
	var targets []local.BuildTarget
	for _, n := range names {
		s := lc.opts.Project.Service(n)
		targets = append(targets, local.BuildTarget{Service: n, Dir: filepath.Join(lc.root, s.Path), Out: filepath.Join(lc.runDir, "bin", n)})
	}
	say("building " + strings.Join(names, ", "))
	return local.Build(ctx, targets, parallel)
}

// runForeground supervises in this process, showing the services' log
// lines, until Ctrl-C.
func runForeground(ctx context.Context, f *Factory, lc *localContext, lines *linePrinter, say func(string)) error {
	// A closed terminal stops everything as Ctrl-C does: the services run
	// in process groups of their own, so its SIGHUP never reaches them, and
	// msctl dying of it would leave them running.
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGHUP)
	defer stop()
	lc.opts.Log = slog.New(lines.handler())
	s, err := local.Start(ctx, lc.opts)
	if err != nil {
		return err
	}
	// Started now, it shows each log from the start of this run (Start
	// truncates them), not the last run's lines.
	watchCtx, stopWatch := context.WithCancel(context.Background())
	var watching sync.WaitGroup
	watching.Go(func() { local.WatchLogs(watchCtx, lc.runDir, lines.line) })
	defer func() {
		stopWatch()
		watching.Wait()
	}()
	if err := f.Print(localTable{s.Status()}); err != nil {
		s.Close()
		return err
	}
	say("ready; press Ctrl-C to stop")
	s.Wait(ctx)
	return nil
}

// linePrinter writes the services' log lines to stderr: prefixed and
// coloured on a terminal, JSON lines with a service field otherwise.
type linePrinter struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	color  bool
	colors map[string]string
}

func newLinePrinter(f *Factory) *linePrinter {
	return &linePrinter{w: f.IO.ErrOut, tty: f.IO.IsStderrTTY(), color: f.IO.IsStderrTTY() && f.IO.ColorEnabled(), colors: map[string]string{}}
}

var prefixColors = []string{"\x1b[36m", "\x1b[33m", "\x1b[35m", "\x1b[32m", "\x1b[34m", "\x1b[31m"}

func (p *linePrinter) line(source, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.tty {
		fmt.Fprintf(p.w, "%s\n", jsonLine(source, text))
		return
	}
	prefix := fmt.Sprintf("%-16s|", source)
	if p.color {
		c, ok := p.colors[source]
		if !ok {
			c = prefixColors[len(p.colors)%len(prefixColors)]
			p.colors[source] = c
		}
		prefix = c + prefix + "\x1b[0m"
	}
	fmt.Fprintf(p.w, "%s %s\n", prefix, text)
}

// jsonLine is a log line as a JSON object with a service field (and a
// track field for a canary's lines, whose source is "NAME.canary"): a
// service's own JSON lines keep their fields, other text becomes msg.
func jsonLine(source, text string) []byte {
	service, canary := strings.CutSuffix(source, ".canary")
	fields := map[string]json.RawMessage{}
	if json.Unmarshal([]byte(text), &fields) != nil {
		msg, _ := json.Marshal(text)
		fields = map[string]json.RawMessage{"msg": msg}
	}
	if _, ok := fields["service"]; !ok {
		fields["service"], _ = json.Marshal(service)
	}
	if canary {
		fields["track"] = json.RawMessage(`"canary"`)
	}
	b, _ := json.Marshal(fields)
	return b
}

// handler is the supervisor's own log, printed like a service named msctl.
func (p *linePrinter) handler() slog.Handler {
	return slog.NewJSONHandler(writerFunc(func(b []byte) (int, error) {
		p.line("msctl", strings.TrimRight(string(b), "\n"))
		return len(b), nil
	}), &slog.HandlerOptions{Level: slog.LevelInfo})
}

type writerFunc func([]byte) (int, error)

func (w writerFunc) Write(b []byte) (int, error) { return w(b) }

// startReport is what the detached supervisor tells up -d on its pipe.
type startReport struct {
	Error    string `json:"error,omitempty"`
	BadInput bool   `json:"badInput,omitempty"`
}

// detachedStopTimeout bounds how long up -d, interrupted, waits for the
// supervisor it started to stop what it started: its services' grace and
// then some.
const detachedStopTimeout = 30 * time.Second

// startDetached re-runs msctl as a supervisor in a session of its own,
// logging to the run directory, and waits for it to report its start.
func startDetached(ctx context.Context, lc *localContext, o *UpOptions) (*local.Status, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	logPath := local.SupervisorLog(lc.runDir)
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	args := []string{"up", "--supervisor", "--no-build", "--config", lc.file, "--port-base", strconv.Itoa(o.PortBase), "--timeout", o.Timeout.String()}
	cmd := exec.Command(exe, append(args, o.Services...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{w}
	cmd.SysProcAttr = local.DetachAttr()
	cmd.Dir = lc.root
	if err := cmd.Start(); err != nil {
		w.Close()
		return nil, err
	}
	w.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }() // reaps it if it exits while up -d waits
	var rep startReport
	done := make(chan error, 1)
	go func() { done <- json.NewDecoder(r).Decode(&rep) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		// SIGTERM, not SIGKILL: the supervisor stops the services it has
		// started so far, which a killed one would leave running.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(detachedStopTimeout):
			_ = cmd.Process.Kill()
		}
		return nil, ctx.Err()
	}
	switch {
	case err != nil:
		return nil, fmt.Errorf("the supervisor exited before it was ready\n%s", logtail.Of(logPath))
	case rep.Error != "" && rep.BadInput:
		return nil, errkind.BadInputf("%s", rep.Error)
	case rep.Error != "":
		return nil, errors.New(rep.Error)
	}
	c, err := local.Connect(lc.runDir)
	if err != nil {
		return nil, err
	}
	return c.Status(ctx)
}

// superviseDetached is the detached supervisor: it starts everything,
// reports on file descriptor 3, and runs until SIGTERM.
func superviseDetached(ctx context.Context, f *Factory, lc *localContext) error {
	report := os.NewFile(3, "start-report")
	lc.opts.Log = slog.New(slog.NewJSONHandler(f.IO.ErrOut, &slog.HandlerOptions{Level: slog.LevelInfo}))
	s, err := local.Start(ctx, lc.opts)
	rep := startReport{}
	if err != nil {
		rep = startReport{Error: err.Error(), BadInput: errkind.Of(err) == errkind.BadInput}
	}
	if report != nil {
		_ = json.NewEncoder(report).Encode(rep)
		report.Close()
	}
	if err != nil {
		return err
	}
	lc.opts.Log.Info("ready", "gateway", s.Status().GatewayURL)
	s.Wait(ctx)
	lc.opts.Log.Info("stopped")
	return nil
}

// DownOptions are the inputs of `msctl down`.
type DownOptions struct {
	Purge bool
	Grace time.Duration
}

type downResult struct{ *local.DownResult }

func (d downResult) MarshalJSON() ([]byte, error) { return json.Marshal(d.DownResult) }

func (d downResult) Text() string {
	s := fmt.Sprintf("stopped %d processes in %s\n", len(d.Stopped), d.RunDir)
	if d.Purged {
		s += "removed the data and logs\n"
	}
	return s
}

// NewCmdDown builds `msctl down`.
func NewCmdDown(f *Factory, runF func(*DownOptions) error) *cobra.Command {
	opts := &DownOptions{}
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Stop what msctl up runs on this machine",
		Long: `Down stops the supervisor that msctl up -d left running and every process it
recorded in .msctl/run: SIGTERM, then SIGKILL after the grace period. It
signals only the recorded process ids, each checked against its recorded
start time, so it works after the supervisor was killed and never hits an
unrelated process. --purge also removes the databases, metrics and logs.

Exit codes: 0 stopped, 1 failure, 2 nothing runs here (without --purge).`,
		Example: `  msctl down
  msctl down --purge`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkTimeout("grace", opts.Grace); err != nil {
				return err
			}
			if runF != nil {
				return runF(opts)
			}
			lc, err := f.localProject(nil)
			if err != nil {
				return err
			}
			res, err := local.Down(lc.runDir, opts.Grace, opts.Purge)
			if err != nil {
				return err
			}
			return f.Print(downResult{res})
		},
	}
	cmd.Flags().BoolVar(&opts.Purge, "purge", false, "also remove the run directory's data and logs")
	cmd.Flags().DurationVar(&opts.Grace, "grace", 10*time.Second, "how long processes may drain before SIGKILL")
	return cmd
}

// LogsOptions are the inputs of `msctl logs`.
type LogsOptions struct {
	Service string
	Follow  bool
	Canary  bool
}

// NewCmdLogs builds `msctl logs`.
func NewCmdLogs(f *Factory, runF func(*LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{}
	cmd := &cobra.Command{
		Use:   "logs SERVICE",
		Short: "Print a locally running service's log",
		Long: `Logs prints the log of a service that msctl up runs (its stable process, or
its canary with --canary), from the run directory; -f keeps printing new
lines until Ctrl-C.`,
		Example: `  msctl logs order
  msctl logs payment --canary -f`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service = args[0]
			if runF != nil {
				return runF(opts)
			}
			lc, err := f.localProject(args)
			if err != nil {
				return err
			}
			role := local.Stable
			if opts.Canary {
				role = local.Canary
			}
			path, err := local.LogFile(lc.runDir, opts.Service, role)
			if err != nil {
				return errkind.BadInputf("%w", err)
			}
			return local.Follow(cmd.Context(), path, opts.Follow, f.IO.Out)
		},
	}
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing new lines")
	cmd.Flags().BoolVar(&opts.Canary, "canary", false, "the canary's log rather than the stable's")
	return cmd
}

// runLocalStatus is status --local: the supervisor's view.
func runLocalStatus(ctx context.Context, f *Factory, services []string) error {
	lc, err := f.localProject(services)
	if err != nil {
		return err
	}
	c, err := local.Connect(lc.runDir)
	if err != nil {
		return err
	}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	if len(services) > 0 {
		all := st.Services
		st.Services = nil
		for _, s := range all {
			if slices.Contains(services, s.Name) {
				st.Services = append(st.Services, s)
			}
		}
	}
	return f.Print(localTable{st})
}
