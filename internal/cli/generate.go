package cli

import (
	"fmt"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/msctl/msctl/internal/generate"
	"github.com/spf13/cobra"
)

// NewCmdGenerate builds `msctl generate` and its subcommands.
func NewCmdGenerate(f *Factory) *cobra.Command {
	cmd := groupCommand(&cobra.Command{
		Use:   "generate",
		Short: "Scaffold new parts of the project",
		Long: `Scaffold new parts of the project from templates built into msctl. What is
generated builds, passes its own tests and follows the project's standards, so
it is a starting point to edit rather than to fix.`,
		Example: `  msctl generate service inventory
  msctl generate service catalog -o json`,
	})
	cmd.AddCommand(NewCmdGenerateService(f, nil))
	return cmd
}

// GenerateServiceOptions are the inputs of `msctl generate service`.
type GenerateServiceOptions struct {
	Name string
	// SkipProto leaves the Go code generation from the proto to make proto.
	SkipProto bool
}

// NewCmdGenerateService builds `msctl generate service`. runF replaces the
// run step in tests.
func NewCmdGenerateService(f *Factory, runF func(*GenerateServiceOptions) error) *cobra.Command {
	opts := &GenerateServiceOptions{}
	cmd := &cobra.Command{
		Use:   "service NAME",
		Short: "Scaffold a new service in services/NAME and add it to msctl.yaml",
		Long: `Scaffold a new service on services/kit, shaped like the bundled user service
but small: an Item resource with CreateItem, GetItem, ListItems (cursor
paging) and DeleteItem over gRPC and HTTP/JSON (/api/v1/NAME/items), a store
with PostgreSQL and SQLite implementations and goose migrations behind one
contract test, an RBAC policy, the kit's interceptor chain, gateway and admin
port (/metrics, /health/*, /debug/breakers), a main with typed environment
config, and an end-to-end test. The service is added to msctl.yaml with the
route /api/v1/NAME and DATABASE_URL from the Secret NAME-db.

NAME is a lower-case letter followed by up to 30 lower-case letters or
digits: it also names a Go package and a protobuf package. Run it in the Go
module's root, next to msctl.yaml. Nothing is written if the name is taken
by a declared service or an existing directory.

Afterwards hack/proto.sh (what make proto runs) generates the Go code from
the new proto; --skip-proto leaves that to you.`,
		Example: `  # A new service, with its Go API code generated
  msctl generate service catalog
  go test ./services/catalog/...

  # Only the files and the msctl.yaml entry; generate the code later
  msctl generate service catalog --skip-proto
  make proto

  # The written files, for scripts
  msctl generate service catalog -o json | jq -r '.files[]'`,
		Args: usageArgs(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Name = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runGenerateService(cmd, f, opts)
		},
	}
	cmd.Flags().BoolVar(&opts.SkipProto, "skip-proto", false, "do not run hack/proto.sh; run make proto yourself")
	return cmd
}

// generatedService is what `msctl generate service` prints.
type generatedService struct {
	*generate.Result
	// ProtoGenerated says hack/proto.sh ran and succeeded.
	ProtoGenerated bool     `json:"protoGenerated"`
	NextSteps      []string `json:"nextSteps"`
}

func (g generatedService) Text() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Created service %s in %s:\n", g.Service, g.Dir)
	for _, file := range g.Files {
		fmt.Fprintf(&b, "  %s\n", file)
	}
	fmt.Fprintf(&b, "Added %s to %s.\n", g.Service, g.ProjectFile)
	if g.ProtoGenerated {
		fmt.Fprintf(&b, "Generated its Go API code from %s.\n", g.Proto)
	}
	b.WriteString("\nNext steps:\n")
	for _, s := range g.NextSteps {
		fmt.Fprintf(&b, "  %s\n", s)
	}
	return b.String()
}

func runGenerateService(cmd *cobra.Command, f *Factory, opts *GenerateServiceOptions) error {
	if err := generate.ValidName(opts.Name); err != nil {
		return &UsageError{Err: err}
	}
	loaded, err := f.Project()
	if err != nil {
		return err
	}
	root := filepath.Dir(loaded.File)
	res, err := generate.Service(root, loaded.File, opts.Name)
	if err != nil {
		return err
	}
	out := generatedService{Result: res}
	var protoErr error
	if !opts.SkipProto {
		progress := f.IO.ErrOut
		if f.Quiet() {
			progress = nil
		}
		var ran bool
		ran, protoErr = generate.Proto(cmd.Context(), root, progress)
		out.ProtoGenerated = ran && protoErr == nil
		if out.ProtoGenerated {
			addGeneratedCode(root, res)
		}
	}
	if !out.ProtoGenerated {
		out.NextSteps = append(out.NextSteps, "make proto    # generate the Go code from "+res.Proto)
	}
	out.NextSteps = append(out.NextSteps,
		"go test ./"+res.Dir+"/...",
		"go run ./"+res.Dir+" --dev    # local run with SQLite and a printed admin token",
		"msctl lint",
		"create the Secret "+res.Service+"-db with DATABASE_URL before deploying",
	)
	if err := f.Print(out); err != nil {
		return err
	}
	if protoErr != nil {
		return fmt.Errorf("%s was written, but its Go code was not generated: %w", res.Dir, protoErr)
	}
	return nil
}

// addGeneratedCode lists the Go files hack/proto.sh wrote for the new
// service with the rest, so the output names every file that is new.
func addGeneratedCode(root string, res *generate.Result) {
	dir := filepath.Join(root, filepath.FromSlash(path.Dir(res.Proto)))
	matches, _ := filepath.Glob(filepath.Join(dir, "*.pb*.go"))
	for _, m := range matches {
		res.Files = append(res.Files, path.Join(path.Dir(res.Proto), filepath.Base(m)))
	}
	slices.Sort(res.Files)
}
