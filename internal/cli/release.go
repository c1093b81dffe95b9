package cli

import (
	"bufio"
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/output"
	"github.com/spf13/cobra"
)

type statusTable []deploy.ServiceStatus

func (s statusTable) Table() output.TableData {
	t := output.TableData{Header: []string{"SERVICE", "REVISION", "RELEASE", "IMAGE", "READY", "STABLE/CANARY", "ISTIO"}}
	for _, x := range s {
		rev := "-"
		if x.Revision > 0 {
			rev = strconv.Itoa(x.Revision)
		}
		istio := "in sync"
		if len(x.Drift) > 0 {
			istio = "drift: " + strings.Join(x.Drift, ", ")
		}
		if x.Revision == 0 {
			istio = "-"
		}
		t.Rows = append(t.Rows, []string{x.Service, rev, x.Release, x.Image, fmt.Sprintf("%d/%d", x.Ready, x.Desired),
			fmt.Sprintf("%d/%d", x.StableWeight, x.CanaryWeight), istio})
	}
	return t
}

// StatusOptions are the inputs of `msctl status`.
type StatusOptions struct {
	Services []string
	// Local reads the local runtime (msctl up) instead of the cluster.
	Local bool
}

// NewCmdStatus builds `msctl status`. runF replaces the run step in tests.
func NewCmdStatus(f *Factory, runF func(*StatusOptions) error) *cobra.Command {
	opts := &StatusOptions{}
	cmd := &cobra.Command{
		Use:   "status [SERVICE...]",
		Short: "Show each service's release, readiness, traffic split and drift",
		Long: `Status reads the cluster: each service's Helm release revision and status, its
image, ready and desired replicas, the VirtualService's stable/canary weights,
and whether the Istio objects still match what msctl would render (drift).

With --local it reads the local runtime that msctl up runs instead: each
service's processes, ports, readiness, restarts and canary traffic.`,
		Example: `  msctl status
  msctl status order payment -o json
  msctl status --local`,
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			if opts.Local {
				return runLocalStatus(cmd.Context(), f, opts.Services)
			}
			return runStatus(cmd.Context(), f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.Local, "local", false, "the local runtime (msctl up) rather than the cluster")
	return cmd
}

func runStatus(ctx context.Context, f *Factory, opts *StatusOptions) error {
	d, err := f.deploymentsFor(ctx, opts.Services)
	if err != nil {
		return err
	}
	st, err := d.Status(ctx, opts.Services)
	if err != nil {
		return err
	}
	return f.Print(statusTable(st))
}

// deploymentsFor checks the named services exist in the project, then
// connects.
func (f *Factory) deploymentsFor(ctx context.Context, services []string) (Deployments, error) {
	if _, err := f.projectFor(services); err != nil {
		return nil, err
	}
	return f.Deployments(ctx)
}

type historyTable []deploy.Revision

// historyDescriptionWidth keeps a table row on one line: Helm's failure
// descriptions run to several lines and hundreds of characters. -o json
// has the whole text.
const historyDescriptionWidth = 80

func (h historyTable) Table() output.TableData {
	t := output.TableData{Header: []string{"REVISION", "UPDATED", "STATUS", "IMAGE", "DESCRIPTION"}}
	for _, r := range h {
		t.Rows = append(t.Rows, []string{strconv.Itoa(r.Revision), r.Updated.UTC().Format(time.RFC3339), r.Status, r.Image,
			truncate(strings.Join(strings.Fields(r.Description), " "), historyDescriptionWidth)})
	}
	return t
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// HistoryOptions are the inputs of `msctl history`.
type HistoryOptions struct {
	Service string
}

// NewCmdHistory builds `msctl history`. runF replaces the run step in tests.
func NewCmdHistory(f *Factory, runF func(*HistoryOptions) error) *cobra.Command {
	opts := &HistoryOptions{}
	return &cobra.Command{
		Use:   "history SERVICE",
		Short: "List a service's release revisions",
		Long: `History lists the revisions of a service's release, oldest first: when, status,
image and description. The table shows each description on one line, cut to
fit; -o json has the whole text.`,
		Example: `  msctl history order
  msctl history order -o json | jq -r '.[-1].image'`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Service = args[0]
			if runF != nil {
				return runF(opts)
			}
			d, err := f.deploymentsFor(cmd.Context(), args)
			if err != nil {
				return err
			}
			h, err := d.History(cmd.Context(), opts.Service)
			if err != nil {
				return err
			}
			return f.Print(historyTable(h))
		},
	}
}

// RollbackOptions are the inputs of `msctl rollback`.
type RollbackOptions struct {
	Service  string
	Revision int
	Timeout  time.Duration
	lock     lockFlags
}

// NewCmdRollback builds `msctl rollback`. runF replaces the run step in tests.
func NewCmdRollback(f *Factory, runF func(*RollbackOptions) error) *cobra.Command {
	opts := &RollbackOptions{}
	cmd := &cobra.Command{
		Use:   "rollback SERVICE [REVISION]",
		Short: "Return a service to an earlier revision",
		Long: `Rollback returns a service's release to REVISION (default: the one before the
current), waits until it is ready, and re-applies the Istio objects for that
revision, keeping a running canary's traffic split.

` + lockHelp,
		Example: `  msctl rollback order
  msctl rollback order 7 --timeout 2m`,
		Args:              usageArgs(cobra.RangeArgs(1, 2)),
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTimeout("timeout", opts.Timeout); err != nil {
				return err
			}
			if err := opts.lock.validate(); err != nil {
				return err
			}
			opts.Service = args[0]
			if len(args) == 2 {
				n, err := strconv.Atoi(args[1])
				if err != nil || n < 1 {
					return &UsageError{Err: fmt.Errorf("revision %q: want a positive number (see msctl history %s)", args[1], args[0]), Cmd: cmd}
				}
				opts.Revision = n
			}
			if runF != nil {
				return runF(opts)
			}
			d, err := f.deploymentsFor(cmd.Context(), args[:1])
			if err != nil {
				return err
			}
			r, err := d.Rollback(cmd.Context(), opts.Service, deploy.RollbackOptions{
				Revision: opts.Revision, Timeout: opts.Timeout, Lock: opts.lock.options(),
			})
			if err != nil {
				return err
			}
			return f.Print(deployResults{r})
		},
	}
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long the rollback may take to become ready")
	opts.lock.register(cmd.Flags())
	return cmd
}

// DestroyOptions are the inputs of `msctl destroy`.
type DestroyOptions struct {
	Services []string
	All      bool
	Yes      bool
	Timeout  time.Duration
	lock     lockFlags
}

// NewCmdDestroy builds `msctl destroy`. runF replaces the run step in tests.
func NewCmdDestroy(f *Factory, runF func(*DestroyOptions) error) *cobra.Command {
	opts := &DestroyOptions{}
	cmd := &cobra.Command{
		Use:   "destroy [SERVICE...|--all]",
		Short: "Uninstall services and delete the Istio objects msctl applied",
		Long: `Destroy uninstalls the services' releases, deletes the Istio objects msctl
applied for them and their locks. With --all it removes every service and
the project-wide objects too (gateway, mesh policies, dashboard); the
namespace itself stays. It asks for confirmation on a terminal; elsewhere it
refuses to run without --yes.

` + lockHelp,
		Example: `  msctl destroy payment
  msctl destroy --all --yes`,
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.All == (len(args) > 0) {
				return &UsageError{Err: fmt.Errorf("name the services to destroy, or pass --all"), Cmd: cmd}
			}
			if err := checkTimeout("timeout", opts.Timeout); err != nil {
				return err
			}
			if err := opts.lock.validate(); err != nil {
				return err
			}
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			return runDestroy(cmd, f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "every service and the project-wide objects")
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&opts.Timeout, "timeout", 5*time.Minute, "how long to wait for the objects to go")
	opts.lock.register(cmd.Flags())
	return cmd
}

func runDestroy(cmd *cobra.Command, f *Factory, opts *DestroyOptions) error {
	loaded, err := f.projectFor(opts.Services)
	if err != nil {
		return err
	}
	p := loaded.Project
	services := opts.Services
	if opts.All {
		services = p.ServiceNames()
	}
	if !opts.Yes {
		if !f.IO.CanPrompt() {
			return &UsageError{Err: fmt.Errorf("destroy needs --yes when not run on a terminal"), Cmd: cmd}
		}
		if !confirm(f, fmt.Sprintf("Destroy %s in namespace %s? [y/N] ", strings.Join(services, ", "), p.Namespace)) {
			fmt.Fprintln(f.IO.ErrOut, "Nothing destroyed.")
			return nil
		}
	}
	d, err := f.Deployments(cmd.Context())
	if err != nil {
		return err
	}
	res, err := d.Destroy(cmd.Context(), deploy.DestroyOptions{
		Services: services, Project: opts.All, Timeout: opts.Timeout, Lock: opts.lock.options(),
	})
	if len(res) > 0 {
		if perr := f.Print(deployResults(res)); perr != nil {
			return perr
		}
	}
	return err
}

// confirm asks a yes/no question on the terminal; anything but yes is no.
func confirm(f *Factory, question string) bool {
	fmt.Fprint(f.IO.ErrOut, question)
	answer, _ := bufio.NewReader(f.IO.In).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}
