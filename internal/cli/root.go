// Package cli is msctl's command line: cobra wiring, flags, option structs
// and printing. The work itself happens in the domain packages under
// internal/; this package only calls them and turns their errors into exit
// codes (see exit.go, the one place that does).
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/msctl/msctl/internal/iostreams"
	"github.com/msctl/msctl/internal/output"
	"github.com/spf13/cobra"
)

// Main runs msctl with the process's arguments and streams and returns the
// exit code. Ctrl-C or SIGTERM cancels the command's context.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, os.Args[1:], iostreams.System())
}

// Run executes one msctl invocation and returns its exit code. Errors are
// printed on one line to stderr.
func Run(ctx context.Context, args []string, streams *iostreams.IOStreams) int {
	return execute(ctx, args, newFactory(streams))
}

// execute runs one invocation with a given Factory; tests hand in one whose
// cluster-facing parts are their own.
func execute(ctx context.Context, args []string, f *Factory) int {
	root := NewRootCmd(f)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err != nil {
		var silent *silentError
		if !errors.As(err, &silent) {
			fmt.Fprintf(f.IO.ErrOut, "msctl: %v\n", err)
		}
	}
	return exitCode(err)
}

// NewRootCmd builds the msctl command tree.
func NewRootCmd(f *Factory) *cobra.Command {
	root := &cobra.Command{
		Use:   "msctl",
		Short: "Build, deploy and canary Go microservices on Kubernetes with Istio",
		Long: `msctl generates, builds, deploys and canaries a set of Go microservices on
Kubernetes with Istio. It renders Helm charts and Istio rules in-process,
analyses canaries with PromQL against Prometheus, and keeps its deploy and
canary state in the cluster, so a later CI job continues where the last one
stopped.

Settings come from flags, then MSCTL_* environment variables, then the
project file (msctl.yaml), then defaults; see msctl config view --show-origin.

` + exitCodesHelp,
		Example: `  # Start a project and check it
  msctl init --name shop
  msctl config validate

  # See the effective configuration and where each value came from
  msctl config view --show-origin

  # Machine-readable output for CI
  msctl version -o json`,
		SilenceErrors: true,
		SilenceUsage:  true,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return unknownCommand(cmd, args[0])
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return f.resolve()
		},
	}
	root.CompletionOptions.DisableDefaultCmd = true
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &UsageError{Err: err, Cmd: cmd}
	})
	root.SetIn(f.IO.In)
	root.SetOut(f.IO.Out)
	root.SetErr(f.IO.ErrOut)

	pf := root.PersistentFlags()
	pf.String("config", "", "project file (default ./msctl.yaml, then $XDG_CONFIG_HOME/msctl/config.yaml)")
	pf.String("kubeconfig", "", "kubeconfig file (default $KUBECONFIG or ~/.kube/config)")
	pf.String("context", "", "kubeconfig context (default its current context)")
	pf.StringP("namespace", "n", "", "namespace to deploy to (default the project's namespace)")
	pf.StringP("output", "o", string(output.Table), "output format: table, json or yaml")
	pf.Bool("no-color", false, "no colours or spinners (also when NO_COLOR is set or stdout is not a terminal)")
	pf.BoolP("verbose", "v", false, "log debug detail to stderr")
	pf.BoolP("quiet", "q", false, "print results only: no progress, only errors on stderr")
	if err := f.bind(pf); err != nil {
		panic(err) // a programming error: a flag bound above is missing
	}
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(
		[]string{"table", "json", "yaml"}, cobra.ShellCompDirectiveNoFileComp))
	_ = root.RegisterFlagCompletionFunc("context", completeContexts(f))
	_ = root.MarkPersistentFlagFilename("config", "yaml", "yml")
	_ = root.MarkPersistentFlagFilename("kubeconfig")

	root.AddGroup(
		&cobra.Group{ID: "project", Title: "Project commands:"},
		&cobra.Group{ID: "cluster", Title: "Cluster commands:"},
		&cobra.Group{ID: "local", Title: "Local commands (no cluster):"},
	)
	groups := []struct {
		id   string
		cmds []*cobra.Command
	}{
		{"project", []*cobra.Command{NewCmdInit(f, nil), NewCmdConfig(f), NewCmdGenerate(f), NewCmdBuild(f, nil), NewCmdRender(f, nil), NewCmdLint(f, nil)}},
		{"cluster", []*cobra.Command{NewCmdDeploy(f, nil), NewCmdStatus(f, nil), NewCmdHistory(f, nil), NewCmdRollback(f, nil), NewCmdDestroy(f, nil), NewCmdCanary(f)}},
		{"local", []*cobra.Command{NewCmdUp(f, nil), NewCmdDown(f, nil), NewCmdLogs(f, nil), NewCmdLoad(f, nil)}},
		{"", []*cobra.Command{NewCmdVersion(f, nil), NewCmdCompletion(f)}},
	}
	for _, g := range groups {
		for _, c := range g.cmds {
			c.GroupID = g.id
			root.AddCommand(c)
		}
	}
	return root
}

// groupCommand makes a command that only holds subcommands print its help
// when called alone and reject unknown subcommands as bad usage (cobra
// would print help and exit 0).
func groupCommand(cmd *cobra.Command) *cobra.Command {
	cmd.Args = func(c *cobra.Command, args []string) error {
		if len(args) > 0 {
			return unknownCommand(c, args[0])
		}
		return nil
	}
	cmd.RunE = func(c *cobra.Command, _ []string) error { return c.Help() }
	return cmd
}

func unknownCommand(cmd *cobra.Command, name string) error {
	msg := fmt.Sprintf("unknown command %q for %q", name, cmd.CommandPath())
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2
	}
	if s := cmd.SuggestionsFor(name); len(s) > 0 {
		msg += fmt.Sprintf("; did you mean %s?", strings.Join(s, " or "))
	}
	return &UsageError{Err: errors.New(msg), Cmd: cmd}
}

// usageArgs makes an argument validator's errors usage errors (exit 2).
func usageArgs(validate cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if err := validate(cmd, args); err != nil {
			return &UsageError{Err: err, Cmd: cmd}
		}
		return nil
	}
}
