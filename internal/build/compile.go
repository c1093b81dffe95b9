package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/msctl/msctl/internal/atomicfile"
	"github.com/msctl/msctl/internal/errkind"
)

// Platform is a GOOS/GOARCH pair an image is built for.
type Platform struct{ OS, Arch string }

func (p Platform) String() string { return p.OS + "/" + p.Arch }

// platforms are the ones msctl builds images for: Linux, where the
// services run, on the architectures Kubernetes nodes have.
var platforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}, {"linux", "arm"}, {"linux", "ppc64le"}, {"linux", "s390x"}, {"linux", "riscv64"}}

// ParsePlatforms reads "linux/amd64,linux/arm64".
func ParsePlatforms(s string) ([]Platform, error) {
	var out []Platform
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		goos, goarch, _ := strings.Cut(part, "/")
		p := Platform{goos, goarch}
		if !slices.Contains(platforms, p) {
			return nil, errkind.BadInputf("platform %q: want one of %s", part, platformList())
		}
		if !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out, nil
}

func platformList() string {
	var s []string
	for _, p := range platforms {
		s = append(s, p.String())
	}
	return strings.Join(s, ", ")
}

// goPackage is what `go list -json` says of one package, as much as a
// binary's cache key needs.
type goPackage struct {
	ImportPath                                               string
	Dir                                                      string
	Standard                                                 bool
	Imports                                                  []string
	Module                                                   *goModule
	Error                                                    *struct{ Err string }
	GoFiles, CgoFiles, EmbedFiles, SFiles, HFiles, SysoFiles []string
	// Not built now, but a change to one (a build tag removed) may make
	// it built, so the key memo watches them.
	IgnoredGoFiles, IgnoredOtherFiles []string
}

type goModule struct {
	Path, Version, Sum string
	Main               bool
	Replace            *goModule
}

const listFields = "ImportPath,Dir,Standard,Imports,Module,Error,GoFiles,CgoFiles,EmbedFiles,SFiles,HFiles,SysoFiles,IgnoredGoFiles,IgnoredOtherFiles"

// toolchain runs the go command in the project's directory.
type toolchain struct {
	dir      string
	cacheDir string
	version  string // `go env GOVERSION`
	gomod    string // `go env GOMOD`: go.mod, beside go.sum
	gowork   string // `go env GOWORK`: go.work, or "" outside a workspace
	flags    string // GOFLAGS, GOEXPERIMENT and GOFIPS140, which change what is built

	mu     sync.Mutex
	hashes map[string]string // file path -> sha256, shared by platforms
}

func newToolchain(ctx context.Context, dir, cacheDir string) (*toolchain, error) {
	out, err := goCmd(ctx, dir, nil, "env", "GOVERSION", "GOMOD", "GOWORK", "GOFLAGS", "GOEXPERIMENT", "GOFIPS140")
	if err != nil {
		return nil, fmt.Errorf("go toolchain: %w", err)
	}
	lines := strings.SplitN(strings.TrimRight(string(out), "\n")+"\n\n\n", "\n", 4)
	return &toolchain{dir: dir, cacheDir: cacheDir, version: lines[0], gomod: lines[1], gowork: lines[2], flags: lines[3], hashes: map[string]string{}}, nil
}

func goCmd(ctx context.Context, dir string, env []string, args ...string) ([]byte, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errb
	cmd.Env = append(os.Environ(), env...)
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &compileError{output: strings.TrimSpace(errb.String()), err: err}
	}
	return out.Bytes(), nil
}

// compileError carries the compiler's output, which is the message a
// user needs.
type compileError struct {
	output string
	err    error
}

func (e *compileError) Error() string {
	// go build heads each package's errors with "# import/path"; the
	// first line of the message, all a table or an error line shows,
	// should be an error.
	var lines []string
	for line := range strings.SplitSeq(e.output, "\n") {
		if !strings.HasPrefix(line, "# ") {
			lines = append(lines, line)
		}
	}
	if out := strings.TrimSpace(strings.Join(lines, "\n")); out != "" {
		return out
	}
	return e.err.Error()
}

// buildEnv fixes every setting of the go command that changes the code
// generated for p, so the build machine's environment (or `go env -w`)
// cannot make another binary of the same source: the instruction set
// levels are Go's defaults for a cross-compile.
func buildEnv(p Platform) []string {
	return []string{"CGO_ENABLED=0", "GOOS=" + p.OS, "GOARCH=" + p.Arch,
		"GOAMD64=v1", "GOARM=7", "GOARM64=v8.0", "GOPPC64=power8", "GORISCV64=rva20u64"}
}

// keys returns a key per package for platform p: a hash of what goes into
// its binary (the toolchain, flags, module versions, and the contents of
// the main module's files) except the linker's -X values, which the
// caller adds, so an unchanged service is neither compiled nor linked
// again.
func (t *toolchain) keys(ctx context.Context, p Platform, pkgs []string) (map[string]string, error) {
	memo := t.memoPath(p, pkgs)
	var m keyMemo
	if readMeta(memo, &m) && m.current() {
		return m.Keys, nil
	}
	args := []string{"list", "-e", "-deps", "-json=" + listFields}
	for _, dir := range pkgs {
		args = append(args, "./"+filepath.ToSlash(dir))
	}
	out, err := goCmd(ctx, t.dir, buildEnv(p), args...)
	if err != nil {
		return nil, err
	}
	byPath := map[string]*goPackage{}
	var roots []*goPackage
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var pkg goPackage
		if err := dec.Decode(&pkg); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list: %v", err)
		}
		byPath[pkg.ImportPath] = &pkg
		roots = append(roots, &pkg)
	}
	// Stat before hashing: a file changed meanwhile then fails the memo's
	// check next time instead of passing it with the old content's key.
	m = keyMemo{Keys: map[string]string{}, Stats: map[string]fileStat{}}
	for _, path := range t.moduleFiles() {
		m.stat(path)
	}
	for _, pkg := range byPath {
		if files, ok := t.localFiles(pkg); ok {
			m.stat(pkg.Dir)
			for _, f := range slices.Concat(files, pkg.IgnoredGoFiles, pkg.IgnoredOtherFiles) {
				m.stat(filepath.Join(pkg.Dir, f))
			}
			// A file added to an embedded directory changes that
			// directory's time, not the package's.
			for _, f := range pkg.EmbedFiles {
				for d := filepath.Dir(f); d != "." && d != "/"; d = filepath.Dir(d) {
					m.stat(filepath.Join(pkg.Dir, d))
				}
			}
		}
	}
	keys := m.Keys
	for _, dir := range pkgs {
		abs := filepath.Join(t.dir, dir)
		var root *goPackage
		for _, pkg := range roots {
			if pkg.Dir == abs {
				root = pkg
			}
		}
		if root == nil {
			return nil, fmt.Errorf("go list: no package in %s", dir)
		}
		h := sha256.New()
		fmt.Fprintf(h, "format %d\ngo %s\nflags %s\nplatform %s\n", cacheFormat, t.version, t.flags, p)
		// go.mod and go.work say more than module versions: the go
		// directive and godebug lines set the binary's GODEBUG defaults.
		for _, path := range []string{t.gomod, t.gowork} {
			if path == "" || path == os.DevNull || path == "off" {
				continue
			}
			sum, err := t.hashFile(path)
			if err != nil {
				return nil, err
			}
			fmt.Fprintf(h, "modfile %s %s\n", filepath.Base(path), sum)
		}
		for _, pkg := range closure(root, byPath) {
			if err := t.hashPackage(h, pkg); err != nil {
				return nil, err
			}
		}
		keys[dir] = hex.EncodeToString(h.Sum(nil))
	}
	if data, err := json.Marshal(m); err == nil && t.gomod != "" {
		// Only a speed-up: a memo that cannot be written is recomputed.
		_ = atomicfile.Write(memo, data, 0o644)
	}
	return keys, nil
}

// moduleFiles are the files beside the packages that say which modules
// are built: go.mod, go.sum, and go.work in a workspace.
func (t *toolchain) moduleFiles() []string {
	files := []string{t.gomod, strings.TrimSuffix(t.gomod, ".mod") + ".sum"}
	if t.gowork != "" && t.gowork != "off" {
		files = append(files, t.gowork, t.gowork+".sum")
	}
	return files
}

// closure is root and every non-standard package it imports, directly
// or not, sorted by import path. It walks Imports rather than asking go
// list for Deps, whose lists for every package make the output megabytes.
func closure(root *goPackage, byPath map[string]*goPackage) []*goPackage {
	seen := map[string]*goPackage{}
	var walk func(*goPackage)
	walk = func(p *goPackage) {
		if p == nil || p.Standard || seen[p.ImportPath] != nil {
			return
		}
		seen[p.ImportPath] = p
		for _, imp := range p.Imports {
			walk(byPath[imp])
		}
	}
	walk(root)
	out := slices.Collect(maps.Values(seen))
	slices.SortFunc(out, func(a, b *goPackage) int { return strings.Compare(a.ImportPath, b.ImportPath) })
	return out
}

// hashPackage writes a package's identity: a module version stands for
// its files, except for the main module and local replacements, whose
// files are read.
func (t *toolchain) hashPackage(h io.Writer, pkg *goPackage) error {
	fmt.Fprintf(h, "package %s\n", pkg.ImportPath)
	if pkg.Error != nil {
		fmt.Fprintf(h, "error %s\n", pkg.Error.Err)
	}
	files, local := t.localFiles(pkg)
	if !local {
		m := pkg.Module
		if m.Replace != nil {
			m = m.Replace
		}
		fmt.Fprintf(h, "module %s@%s %s\n", m.Path, m.Version, m.Sum)
		return nil
	}
	for _, f := range files {
		sum, err := t.hashFile(filepath.Join(pkg.Dir, f))
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "file %s %s\n", f, sum)
	}
	return nil
}

// localFiles are the files of a package of the main module, a local
// replacement or the vendor directory (whose copies can be edited without
// a new version), sorted; ok is false for a package that a module version
// identifies.
func (t *toolchain) localFiles(pkg *goPackage) (files []string, ok bool) {
	vendored := t.gomod != "" && strings.HasPrefix(pkg.Dir, filepath.Join(filepath.Dir(t.gomod), "vendor")+string(filepath.Separator))
	if m := pkg.Module; pkg.Standard || !vendored && m != nil && !m.Main && (m.Replace == nil || m.Replace.Version != "") {
		return nil, false
	}
	files = slices.Concat(pkg.GoFiles, pkg.CgoFiles, pkg.EmbedFiles, pkg.SFiles, pkg.HFiles, pkg.SysoFiles)
	slices.Sort(files)
	return files, true
}

func (t *toolchain) hashFile(path string) (string, error) {
	t.mu.Lock()
	sum, ok := t.hashes[path]
	t.mu.Unlock()
	if ok {
		return sum, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	sum = hex.EncodeToString(h.Sum(nil))
	t.mu.Lock()
	t.hashes[path] = sum
	t.mu.Unlock()
	return sum, nil
}

// compile builds the package in dir for p into out: static, without
// paths of the build machine or VCS stamps (the version and commit come
// in through ldflags, so an uncommitted change to one service leaves the
// others' binaries alone).
func (t *toolchain) compile(ctx context.Context, p Platform, dir, out string, ldflags map[string]string) error {
	ld := []string{"-s", "-w", "-buildid="}
	for _, k := range slices.Sorted(maps.Keys(ldflags)) {
		ld = append(ld, "-X", k+"="+ldflags[k])
	}
	_, err := goCmd(ctx, t.dir, buildEnv(p), "build", "-trimpath", "-buildvcs=false",
		"-ldflags", strings.Join(ld, " "), "-o", out, "./"+filepath.ToSlash(filepath.Clean(dir)))
	return err
}

// module is one Go module linked into a binary, for the SBOM.
type module struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	Sum     string `json:"sum,omitempty"`
}

// linkedModules reads the module list the Go linker embedded in a binary.
func linkedModules(path string) (main module, goVersion string, deps []module, err error) {
	bi, err := buildinfo.ReadFile(path)
	if err != nil {
		return module{}, "", nil, err
	}
	for _, d := range bi.Deps {
		if d.Replace != nil {
			d = d.Replace
		}
		deps = append(deps, module{Path: d.Path, Version: d.Version, Sum: d.Sum})
	}
	return module{Path: bi.Main.Path, Version: bi.Main.Version}, bi.GoVersion, deps, nil
}
