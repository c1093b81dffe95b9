package cli

import (
	"errors"
	"fmt"
	"strings"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/output"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// NewCmdConfig builds `msctl config` and its subcommands.
func NewCmdConfig(f *Factory) *cobra.Command {
	cmd := groupCommand(&cobra.Command{
		Use:   "config",
		Short: "Show and check the project configuration",
		Long: `Show and check the project file, msctl.yaml, after flags, MSCTL_* variables
and defaults are applied. The file's schema is apiVersion msctl.dev/v1alpha1,
kind Project; msctl init writes a commented example.

Overridable keys (flag, then variable, then file, then default):
` + settingsHelp(),
		Example: `  msctl config view
  msctl config view order --show-origin
  msctl config validate -o json`,
	})
	cmd.AddCommand(NewCmdConfigView(f, nil), NewCmdConfigValidate(f, nil))
	return cmd
}

func settingsHelp() string {
	var b strings.Builder
	for _, s := range config.Settings() {
		flag := ""
		if s.Flag != "" {
			flag = "--" + s.Flag
		}
		fmt.Fprintf(&b, "  %-24s %-12s %s\n", s.Key, flag, s.Env)
	}
	return strings.TrimRight(b.String(), "\n")
}

// ConfigViewOptions are the inputs of `msctl config view`.
type ConfigViewOptions struct {
	Services   []string
	ShowOrigin bool
}

// NewCmdConfigView builds `msctl config view`. runF replaces the run step in tests.
func NewCmdConfigView(f *Factory, runF func(*ConfigViewOptions) error) *cobra.Command {
	opts := &ConfigViewOptions{}
	cmd := &cobra.Command{
		Use:   "view [SERVICE...]",
		Short: "Print the effective configuration",
		Long: `Print the project as msctl sees it: the file with flags, MSCTL_* variables and
defaults applied. Name services to see only those. --show-origin says where
each value came from: a flag, a variable, file:line, or default.`,
		Example: `  msctl config view
  msctl config view user order -o json
  MSCTL_NAMESPACE=staging msctl config view -o yaml --show-origin`,
		ValidArgsFunction: completeServices(f),
		RunE: func(_ *cobra.Command, args []string) error {
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			return runConfigView(f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.ShowOrigin, "show-origin", false, "say where each value came from")
	return cmd
}

type originTable []config.Entry

func (t originTable) Table() output.TableData {
	d := output.TableData{Header: []string{"KEY", "VALUE", "ORIGIN"}}
	for _, e := range t {
		d.Rows = append(d.Rows, []string{e.Key, e.Value, e.Origin})
	}
	return d
}

func runConfigView(f *Factory, opts *ConfigViewOptions) error {
	loaded, err := f.projectFor(opts.Services)
	if err != nil {
		return err
	}
	view := loaded
	if len(opts.Services) > 0 {
		view = loaded.Only(opts.Services)
	}
	if !opts.ShowOrigin {
		return f.Print(view.Project)
	}
	if f.Format == output.YAML {
		y, err := view.AnnotatedYAML()
		if err != nil {
			return err
		}
		_, err = f.IO.Out.Write(y)
		return err
	}
	return f.Print(originTable(view.Entries()))
}

// projectFor loads the project and checks that it declares every one of
// the named services.
func (f *Factory) projectFor(services []string) (*config.Loaded, error) {
	loaded, err := f.Project()
	return declaring(loaded, err, services)
}

// canaryProjectFor is projectFor with the canary blocks' problems left in
// Loaded.CanaryErr (see projectExceptCanary).
func (f *Factory) canaryProjectFor(services []string) (*config.Loaded, error) {
	loaded, err := f.projectExceptCanary()
	return declaring(loaded, err, services)
}

// declaring is loaded when it loaded and declares every one of services.
func declaring(loaded *config.Loaded, err error, services []string) (*config.Loaded, error) {
	if err != nil {
		return nil, err
	}
	if err := checkServices(loaded.Project, services); err != nil {
		return nil, err
	}
	return loaded, nil
}

// safeProject is projectFor for commands that render or deploy: it also
// refuses variables meant for local runs only (AUTH_DEV_MODE, ADMIN_PPROF,
// FAULT_*) in a service's env, unless allow (--allow-unsafe-env).
func (f *Factory) safeProject(services []string, allow bool) (*config.Loaded, error) {
	loaded, err := f.projectFor(services)
	if err != nil || allow {
		return loaded, err
	}
	if err := loaded.UnsafeEnv(); err != nil {
		return nil, err
	}
	return loaded, nil
}

// allowUnsafeEnvFlag registers --allow-unsafe-env on a command that
// renders or deploys.
func allowUnsafeEnvFlag(fs *pflag.FlagSet, allow *bool) {
	fs.BoolVar(allow, "allow-unsafe-env", false, "accept AUTH_DEV_MODE, ADMIN_PPROF and FAULT_* in a service's env (for local and test clusters only)")
}

// checkServices rejects service names the project does not declare.
func checkServices(p *config.Project, names []string) error {
	for _, n := range names {
		if p.Service(n) == nil {
			return &UsageError{Err: fmt.Errorf("unknown service %q (the project has: %s)", n, strings.Join(p.ServiceNames(), ", "))}
		}
	}
	return nil
}

// ConfigValidateOptions are the inputs of `msctl config validate`.
type ConfigValidateOptions struct {
	AllowUnsafeEnv bool
}

type validateResult struct {
	File     string           `json:"file"`
	Valid    bool             `json:"valid"`
	Services []string         `json:"services,omitempty"`
	Problems []config.Problem `json:"problems,omitempty"`
}

func (r validateResult) Text() string {
	if !r.Valid {
		var b strings.Builder
		for _, p := range r.Problems {
			b.WriteString(p.String() + "\n")
		}
		return b.String()
	}
	return fmt.Sprintf("%s is valid: %d services (%s)\n", r.File, len(r.Services), strings.Join(r.Services, ", "))
}

// NewCmdConfigValidate builds `msctl config validate`. runF replaces the run step in tests.
func NewCmdConfigValidate(f *Factory, runF func(*ConfigValidateOptions) error) *cobra.Command {
	opts := &ConfigValidateOptions{}
	cmd := &cobra.Command{
		Use:   "validate",
		Short: "Check the project file and report every problem",
		Long: `Check the project file strictly: unknown keys, wrong types, bad names, ports
out of range, duplicate services, calls to undeclared services, call cycles,
bad canary steps or thresholds, bad key Secrets, and variables meant for
local runs only (AUTH_DEV_MODE, ADMIN_PPROF, FAULT_*) in a service's env,
which render, deploy and canary refuse too unless --allow-unsafe-env. Every
problem is printed with its file, line, column and key. Exits 0 when valid,
2 when not.`,
		Example: `  msctl config validate
  msctl config validate --config staging.yaml -o json
  msctl config validate --config kind.yaml --allow-unsafe-env`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return runConfigValidate(f, opts)
		},
	}
	allowUnsafeEnvFlag(cmd.Flags(), &opts.AllowUnsafeEnv)
	return cmd
}

func runConfigValidate(f *Factory, opts *ConfigValidateOptions) error {
	loaded, err := f.safeProject(nil, opts.AllowUnsafeEnv)
	var cerr *config.Error
	switch {
	case errors.As(err, &cerr):
		res := validateResult{File: cerr.Problems[0].Source, Problems: cerr.Problems}
		if f.Format == output.Table {
			// Problems are the command's diagnostics: stderr, one a line.
			_, _ = fmt.Fprint(f.IO.ErrOut, res.Text())
		} else if err := f.Print(res); err != nil {
			return err
		}
		return &silentError{code: ExitUsage}
	case err != nil:
		return err
	}
	return f.Print(validateResult{File: loaded.File, Valid: true, Services: loaded.Project.ServiceNames()})
}
