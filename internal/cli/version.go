package cli

import (
	"fmt"

	"github.com/msctl/msctl/internal/buildinfo"
	"github.com/spf13/cobra"
)

// versionResult prints as one line for people and as an object for programs.
type versionResult struct{ buildinfo.Info }

func (v versionResult) Text() string {
	return fmt.Sprintf("msctl %s (commit %s, built %s, %s %s)\n", v.Version, v.Commit, v.BuildDate, v.GoVersion, v.Platform)
}

// NewCmdVersion builds `msctl version`. runF replaces the run step in tests.
func NewCmdVersion(f *Factory, runF func() error) *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print msctl's version, commit, build date and Go version",
		Long: `Print which msctl build this is. Release builds carry the version, commit and
build date set at link time; other builds report what the Go toolchain
recorded from version control.`,
		Example: `  msctl version
  msctl version -o json | jq -r .version`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF()
			}
			return f.Print(versionResult{buildinfo.Get()})
		},
	}
}
