// Package generate scaffolds new services for the project: a small but
// complete service in services/<name>, built on services/kit the way the
// user service is (proto and gateway routes, store with PostgreSQL and
// SQLite behind one contract test, RBAC policy, wiring, main, end-to-end
// test), and its entry in msctl.yaml.
//
// It writes all or nothing: every file is rendered in memory and checked
// first, the service directory appears by one rename, and the project file
// is replaced atomically last. It never overwrites an existing directory
// or service, and runs nothing but the project's own hack/proto.sh.
package generate

import (
	"bufio"
	"bytes"
	"context"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"text/template"

	"github.com/msctl/msctl/internal/errkind"

	"github.com/msctl/msctl/internal/atomicfile"
	"github.com/msctl/msctl/internal/config"
)

//go:embed templates/service
var templates embed.FS

const templateRoot = "templates/service"

// nameRE keeps a service name usable everywhere it ends up: a directory, a
// DNS label (Kubernetes objects, Istio hosts), a Go package ("<name>v1")
// and a protobuf package component. Hyphens and upper case fail one of
// those, and 31 characters leave room for the suffixes the chart adds.
var nameRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,30}$`)

// ValidName checks a new service's name.
func ValidName(name string) error {
	if !nameRE.MatchString(name) {
		return errkind.BadInputf("service name %q is not valid: want a lower-case letter, then up to 30 lower-case letters or digits (no '-', so it can also name a Go package)", name)
	}
	return nil
}

// Result is what Service wrote.
type Result struct {
	Service string `json:"service"`
	// Dir is the service's directory and Files everything in it, relative
	// to the project root with forward slashes, sorted.
	Dir   string   `json:"dir"`
	Files []string `json:"files"`
	// ProjectFile is the msctl.yaml the service was added to.
	ProjectFile string `json:"projectFile"`
	// Proto is the service's proto file, relative to the root; its Go code
	// exists only once hack/proto.sh (make proto) has run.
	Proto string `json:"proto"`
}

// Service scaffolds the service name in root/services/name and adds it to
// projectFile. root must be the Go module's root (it holds go.mod and
// services/kit); the module path for imports comes from its go.mod.
// Errors about the name are errkind.BadInput errors; a project file that does not
// parse, or would not after the change, is *config.Error.
func Service(root, projectFile, name string) (*Result, error) {
	if err := ValidName(name); err != nil {
		return nil, err
	}
	original, err := os.ReadFile(projectFile)
	if err != nil {
		return nil, fmt.Errorf("reading the project file: %w", err)
	}
	loaded, err := config.Parse(projectFile, original, nil)
	if err != nil {
		return nil, err
	}
	if loaded.Project.Service(name) != nil {
		return nil, errkind.BadInputf("service %q is already declared in %s", name, projectFile)
	}
	rel := path.Join("services", name)
	final := filepath.Join(root, filepath.FromSlash(rel))
	if _, err := os.Lstat(final); err == nil {
		return nil, errkind.BadInputf("%s already exists; pick another name or remove it", rel)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	module, err := modulePath(root)
	if err != nil {
		return nil, err
	}
	files, err := render(module, name)
	if err != nil {
		return nil, err
	}
	servicePath, err := filepath.Rel(filepath.Dir(projectFile), final)
	if err != nil {
		return nil, fmt.Errorf("service path relative to %s: %w", projectFile, err)
	}
	updated, err := AddToProject(projectFile, original, Entry(name, filepath.ToSlash(servicePath)))
	if err != nil {
		return nil, err
	}
	info, err := os.Stat(projectFile)
	if err != nil {
		return nil, err
	}

	if err := writeTree(filepath.Dir(final), final, files); err != nil {
		return nil, err
	}
	if err := atomicfile.Write(projectFile, updated, info.Mode().Perm()); err != nil {
		// The service without its entry would be half a change.
		_ = os.RemoveAll(final)
		return nil, fmt.Errorf("updating %s: %w", projectFile, err)
	}

	res := &Result{Service: name, Dir: rel, ProjectFile: projectFile}
	for p := range files {
		res.Files = append(res.Files, path.Join(rel, p))
		if strings.HasSuffix(p, ".proto") {
			res.Proto = path.Join(rel, p)
		}
	}
	slices.Sort(res.Files)
	return res, nil
}

// data is what the templates see.
type data struct {
	Module       string // Go module path, e.g. github.com/msctl/msctl
	Name         string // widget
	Pkg          string // widgetv1: the API's Go package
	ProtoPackage string // msctl.widget.v1
	Service      string // WidgetService: the gRPC service
}

// render executes every template in memory and gofmts the Go files, so a
// broken template fails here rather than leaving a service that does not
// compile. Keys are paths relative to the service directory.
func render(module, name string) (map[string][]byte, error) {
	d := data{
		Module:       module,
		Name:         name,
		Pkg:          name + "v1",
		ProtoPackage: "msctl." + name + ".v1",
		Service:      strings.ToUpper(name[:1]) + name[1:] + "Service",
	}
	out := map[string][]byte{}
	err := fs.WalkDir(templates, templateRoot, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		src, err := templates.ReadFile(p)
		if err != nil {
			return err
		}
		t, err := template.New(p).Option("missingkey=error").Parse(string(src))
		if err != nil {
			return err
		}
		var b bytes.Buffer
		if err := t.Execute(&b, d); err != nil {
			return err
		}
		rel := strings.TrimSuffix(strings.TrimPrefix(p, templateRoot+"/"), ".tmpl")
		rel = strings.NewReplacer("PKG", d.Pkg, "NAME", d.Name).Replace(rel)
		content := b.Bytes()
		if strings.HasSuffix(rel, ".go") {
			if content, err = format.Source(content); err != nil {
				return fmt.Errorf("template %s does not give valid Go: %w", p, err)
			}
		}
		out[rel] = content
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("generate: rendering templates: %w", err)
	}
	return out, nil
}

// writeTree writes files into a temporary directory next to final and
// renames it into place, so final appears complete or not at all.
func writeTree(parent, final string, files map[string][]byte) error {
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return err
	}
	// A dot name: neither hack/proto.sh's globs nor ./... patterns see it.
	tmp, err := os.MkdirTemp(parent, ".generate-"+filepath.Base(final)+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for rel, content := range files {
		p := filepath.Join(tmp, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, content, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	return os.Rename(tmp, final)
}

// modulePath reads the module path from root/go.mod.
func modulePath(root string) (string, error) {
	f := filepath.Join(root, "go.mod")
	b, err := os.ReadFile(f)
	if errors.Is(err, fs.ErrNotExist) {
		return "", errkind.BadInputf("%s not found: generate services from the Go module's root, next to msctl.yaml", f)
	}
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(strings.TrimSpace(line), "module")
		if !ok || (rest != "" && rest[0] != ' ' && rest[0] != '\t') {
			continue
		}
		rest = strings.TrimSpace(rest)
		if i := strings.Index(rest, "//"); i >= 0 {
			rest = strings.TrimSpace(rest[:i])
		}
		if unq, err := strconv.Unquote(rest); err == nil {
			rest = unq
		}
		if rest != "" {
			return rest, nil
		}
	}
	return "", fmt.Errorf("%s has no module line", f)
}

// ProtoScript is the project's proto generator, relative to the root; make
// proto runs the same script.
const ProtoScript = "hack/proto.sh"

// Proto regenerates the services' Go API code by running root's
// hack/proto.sh with bash, streaming its progress to progress (may be nil).
// ran is false when the project has no such script.
func Proto(ctx context.Context, root string, progress io.Writer) (ran bool, err error) {
	script := filepath.Join(root, filepath.FromSlash(ProtoScript))
	if _, err := os.Stat(script); errors.Is(err, fs.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	var log bytes.Buffer
	w := io.Writer(&log)
	if progress != nil {
		w = io.MultiWriter(&log, progress)
	}
	cmd := exec.CommandContext(ctx, "bash", ProtoScript)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Run(); err != nil {
		return true, fmt.Errorf("%s failed (%v)%s; fix that, then run make proto", ProtoScript, err, lastLine(log.Bytes()))
	}
	return true, nil
}

func lastLine(b []byte) string {
	var last string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			last = l
		}
	}
	if last == "" {
		return ""
	}
	return ": " + last
}
