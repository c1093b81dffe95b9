package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/msctl/msctl/internal/config"
	"github.com/spf13/cobra"
)

// InitOptions are the inputs of `msctl init`.
type InitOptions struct {
	Path  string
	Name  string
	Force bool
}

type initResult struct {
	Path string `json:"path"`
	Name string `json:"name"`
}

func (r initResult) Text() string {
	return fmt.Sprintf("Wrote %s for project %q. Edit its services, then run: msctl config validate\n", r.Path, r.Name)
}

// NewCmdInit builds `msctl init`. runF replaces the run step in tests.
func NewCmdInit(f *Factory, runF func(*InitOptions) error) *cobra.Command {
	opts := &InitOptions{}
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write a commented starter msctl.yaml",
		Long: `Write a starter project file with every key explained in a comment. It goes
to --config if given, else ./msctl.yaml. An existing file is never replaced
unless --force is given.`,
		Example: `  # A project named after the current directory
  msctl init

  # Name it, and write it somewhere else
  msctl init --name shop --config deploy/msctl.yaml`,
		Args: usageArgs(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts.Path = f.v.GetString(keyConfig)
			if opts.Path == "" {
				opts.Path = config.DefaultFile
			}
			if opts.Name == "" {
				opts.Name = nameFromDir()
			}
			if runF != nil {
				return runF(opts)
			}
			return runInit(f, opts)
		},
	}
	cmd.Flags().StringVar(&opts.Name, "name", "", "project name, a DNS label (default: the current directory's name)")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "overwrite an existing file")
	return cmd
}

func runInit(f *Factory, opts *InitOptions) error {
	data, err := config.Starter(opts.Name)
	if err != nil {
		return err
	}
	if err := config.WriteFile(opts.Path, data, opts.Force); err != nil {
		return err
	}
	return f.Print(initResult{Path: opts.Path, Name: opts.Name})
}

var notInLabel = regexp.MustCompile(`[^a-z0-9-]+`)

// nameFromDir turns the working directory's name into a DNS label.
func nameFromDir() string {
	dir, err := os.Getwd()
	if err != nil {
		return "app"
	}
	name := notInLabel.ReplaceAllString(strings.ToLower(filepath.Base(dir)), "-")
	name = strings.Trim(name, "-")
	if len(name) > 63 {
		name = strings.Trim(name[:63], "-")
	}
	if name == "" {
		return "app"
	}
	return name
}
