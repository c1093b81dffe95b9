package cli

import (
	"bufio"
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

// NewCmdStatus builds `msctl status`.
func NewCmdStatus(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "status [SERVICE...]",
		Short: "Show each service's release, readiness, traffic split and drift",
		Long: `Status reads the cluster: each service's Helm release revision and status, its
image, ready and desired replicas, the VirtualService's stable/canary weights,
and whether the Istio objects still match what msctl would render (drift).`,
		Example: `  msctl status
  msctl status order payment -o json`,
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := f.deployer(cmd.Context(), args)
			if err != nil {
				return err
			}
			st, err := d.Status(cmd.Context(), args)
			if err != nil {
				return err
			}
			return f.Print(statusTable(st))
		},
	}
}

type historyTable []deploy.Revision

func (h historyTable) Table() output.TableData {
	t := output.TableData{Header: []string{"REVISION", "UPDATED", "STATUS", "IMAGE", "DESCRIPTION"}}
	for _, r := range h {
		t.Rows = append(t.Rows, []string{strconv.Itoa(r.Revision), r.Updated.UTC().Format(time.RFC3339), r.Status, r.Image, r.Description})
	}
	return t
}

// NewCmdHistory builds `msctl history`.
func NewCmdHistory(f *Factory) *cobra.Command {
	return &cobra.Command{
		Use:   "history SERVICE",
		Short: "List a service's release revisions",
		Long:  `History lists the revisions of a service's release, oldest first: when, status, image and description.`,
		Example: `  msctl history order
  msctl history order -o json | jq -r '.[-1].image'`,
		Args:              usageArgs(cobra.ExactArgs(1)),
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := f.deployer(cmd.Context(), args)
			if err != nil {
				return err
			}
			h, err := d.History(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return f.Print(historyTable(h))
		},
	}
}

// NewCmdRollback builds `msctl rollback`.
func NewCmdRollback(f *Factory) *cobra.Command {
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "rollback SERVICE [REVISION]",
		Short: "Return a service to an earlier revision",
		Long: `Rollback returns a service's release to REVISION (default: the one before the
current), waits until it is ready, and re-applies the Istio objects for that
revision, keeping a running canary's traffic split. It takes the service's
lock like deploy does.`,
		Example: `  msctl rollback order
  msctl rollback order 7 --timeout 2m`,
		Args:              usageArgs(cobra.RangeArgs(1, 2)),
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkTimeout("timeout", timeout); err != nil {
				return err
			}
			revision := 0
			if len(args) == 2 {
				n, err := strconv.Atoi(args[1])
				if err != nil || n < 1 {
					return &UsageError{Err: fmt.Errorf("revision %q: want a positive number (see msctl history %s)", args[1], args[0]), Cmd: cmd}
				}
				revision = n
			}
			d, err := f.deployer(cmd.Context(), args[:1])
			if err != nil {
				return err
			}
			r, err := d.Rollback(cmd.Context(), args[0], revision, deploy.Options{Timeout: timeout, Holder: holderIdentity()})
			if err != nil {
				return err
			}
			return f.Print(deployResults{r})
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long the rollback may take to become ready")
	return cmd
}

// NewCmdDestroy builds `msctl destroy`.
func NewCmdDestroy(f *Factory) *cobra.Command {
	var all, yes bool
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "destroy [SERVICE...|--all]",
		Short: "Uninstall services and delete the Istio objects msctl applied",
		Long: `Destroy uninstalls the services' releases, deletes the Istio objects msctl
applied for them and their locks. With --all it removes every service and
the project-wide objects too (gateway, mesh policies, dashboard); the
namespace itself stays. It asks for confirmation on a terminal; elsewhere it
refuses to run without --yes.`,
		Example: `  msctl destroy payment
  msctl destroy --all --yes`,
		ValidArgsFunction: completeServices(f),
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) > 0) {
				return &UsageError{Err: fmt.Errorf("name the services to destroy, or pass --all"), Cmd: cmd}
			}
			loaded, err := f.Project()
			if err != nil {
				return err
			}
			p := loaded.Project
			if err := checkServices(p, args); err != nil {
				return err
			}
			services := args
			if all {
				services = p.ServiceNames()
			}
			if !yes {
				if !f.IO.CanPrompt() {
					return &UsageError{Err: fmt.Errorf("destroy needs --yes when not run on a terminal"), Cmd: cmd}
				}
				if !confirm(f, fmt.Sprintf("Destroy %s in namespace %s? [y/N] ", strings.Join(services, ", "), p.Namespace)) {
					fmt.Fprintln(f.IO.ErrOut, "Nothing destroyed.")
					return nil
				}
			}
			if err := checkTimeout("timeout", timeout); err != nil {
				return err
			}
			d, err := f.deployer(cmd.Context(), nil)
			if err != nil {
				return err
			}
			res, err := d.Destroy(cmd.Context(), services, all, deploy.Options{Timeout: timeout, Holder: holderIdentity()})
			if len(res) > 0 {
				if perr := f.Print(deployResults(res)); perr != nil {
					return perr
				}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "every service and the project-wide objects")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().DurationVar(&timeout, "timeout", 5*time.Minute, "how long to wait for the objects to go")
	return cmd
}

// confirm asks a yes/no question on the terminal; anything but yes is no.
func confirm(f *Factory, question string) bool {
	fmt.Fprint(f.IO.ErrOut, question)
	answer, _ := bufio.NewReader(f.IO.In).ReadString('\n')
	answer = strings.ToLower(strings.TrimSpace(answer))
	return answer == "y" || answer == "yes"
}
