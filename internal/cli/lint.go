package cli

import (
	"fmt"
	"path/filepath"

	"github.com/msctl/msctl/internal/lint"
	"github.com/msctl/msctl/internal/output"
	"github.com/spf13/cobra"
)

type lintReport []lint.Finding

func (r lintReport) Table() output.TableData {
	t := output.TableData{Header: []string{"SEVERITY", "SUBJECT", "MESSAGE"}}
	for _, f := range r {
		t.Rows = append(t.Rows, []string{string(f.Severity), f.Subject, f.Message})
	}
	return t
}

// NewCmdLint builds `msctl lint`. runF replaces the run step in tests.
func NewCmdLint(f *Factory, runF func() error) *cobra.Command {
	return &cobra.Command{
		Use:   "lint",
		Short: "Check the chart, the values, the services' sources and the Istio routes",
		Long: `Lint the project beyond its file's schema: Helm's chart linter with each
service's values, the chart's values schema, that every service's source
directory exists, and that every Istio route points at a host, subset and
gateway that the rendered objects define. Exits 1 when any finding is an
error, 0 otherwise.`,
		Example: `  msctl lint
  msctl lint -o json | jq '.[] | select(.severity == "error")'`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF()
			}
			return runLint(f)
		},
	}
}

func runLint(f *Factory) error {
	loaded, err := f.Project()
	if err != nil {
		return err
	}
	findings, err := lint.Project(loaded.Project, filepath.Dir(loaded.File))
	if err != nil {
		return err
	}
	if findings == nil {
		findings = []lint.Finding{}
	}
	if len(findings) == 0 && f.Format == output.Table {
		fmt.Fprintln(f.IO.Out, "No problems found.")
	} else if err := f.Print(lintReport(findings)); err != nil {
		return err
	}
	if lint.Failed(findings) {
		return &silentError{code: ExitFailure}
	}
	return nil
}
