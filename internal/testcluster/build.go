package testcluster

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Names of the binaries in a cache entry; they are also the component names
// used in log files and errors.
const (
	binEtcd              = "etcd"
	binAPIServer         = "kube-apiserver"
	binControllerManager = "kube-controller-manager"
	binScheduler         = "kube-scheduler"
	binKwok              = "kwok"
)

var allBinaries = []string{binEtcd, binAPIServer, binControllerManager, binScheduler, binKwok}

func binariesKey() string {
	return fmt.Sprintf("bin-%s-kubernetes%s-etcd%s-kwok%s-%s-%s",
		buildRecipe, KubernetesVersion, EtcdVersion, KwokVersion, runtime.GOOS, runtime.GOARCH)
}

// ensureBinaries returns the cache entry holding every binary, building them
// on the first run on a machine.
func ensureBinaries(ctx context.Context, cacheDir string, log io.Writer) (string, error) {
	return cacheEntry(ctx, cacheDir, binariesKey(), log, func(ctx context.Context, dir string) error {
		fmt.Fprintf(log, "testcluster: building kube-apiserver, kube-controller-manager, kube-scheduler %s, etcd %s and kwok %s into %s\n"+
			"testcluster: this happens once per machine and takes several minutes\n",
			KubernetesVersion, EtcdVersion, KwokVersion, filepath.Dir(dir))
		start := time.Now()
		if err := buildBinaries(ctx, dir); err != nil {
			return err
		}
		for _, name := range allBinaries {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				return fmt.Errorf("build finished but %s is missing: %w", name, err)
			}
		}
		fmt.Fprintf(log, "testcluster: binaries built in %s\n", time.Since(start).Round(time.Second))
		return nil
	})
}

// buildBinaries runs the three builds side by side: each is mostly
// single-threaded at its start (module loading) and end (linking), so
// overlapping them uses the cores better than running them in turn.
func buildBinaries(ctx context.Context, out string) error {
	work, err := os.MkdirTemp("", "msctl-testcluster-build-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)

	jobs := []func(context.Context, string, string) error{buildKubernetes, buildEtcd, buildKwok}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	for i, job := range jobs {
		wg.Go(func() {
			dir := filepath.Join(work, fmt.Sprint(i))
			if err := os.Mkdir(dir, 0o755); err != nil {
				errs[i] = err
				return
			}
			errs[i] = job(ctx, dir, out)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// buildKubernetes builds the three control plane binaries. k8s.io/kubernetes
// cannot be `go install`ed because its go.mod replaces every staging module
// with a path inside its own repository; a wrapper module that points those
// replaces at the published k8s.io/<name> modules builds it unchanged.
func buildKubernetes(ctx context.Context, work, out string) error {
	what := fmt.Sprintf("kube-apiserver, kube-controller-manager and kube-scheduler (%s@%s)", modKubernetes, KubernetesVersion)
	info, err := downloadModules(ctx, work, modKubernetes+"@"+KubernetesVersion)
	if err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	upstream, err := os.ReadFile(info[0].GoMod)
	if err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	staging := stagingModules(upstream)
	if len(staging) == 0 {
		return fmt.Errorf("build %s: found no staging replace directives in %s", what, info[0].GoMod)
	}
	var gomod strings.Builder
	fmt.Fprintf(&gomod, "module msctl.test/kubernetes-build\n\ngo 1.26.0\n\nrequire %s %s\n\nreplace (\n", modKubernetes, KubernetesVersion)
	for _, m := range staging {
		fmt.Fprintf(&gomod, "\t%s => %s %s\n", m, m, StagingVersion)
	}
	gomod.WriteString(")\n")
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(gomod.String()), 0o644); err != nil {
		return err
	}
	args := []string{"build", "-trimpath", "-ldflags", kubeLDFlags(), "-o", out + string(filepath.Separator)}
	for _, b := range []string{binAPIServer, binControllerManager, binScheduler} {
		args = append(args, modKubernetes+"/cmd/"+b)
	}
	if err := runGo(ctx, work, "-mod=mod", args...); err != nil {
		return fmt.Errorf("build %s: %w", what, err)
	}
	return nil
}

// kubeLDFlags stamps the release version the way Kubernetes' own build does,
// so /version reports v1.37.2 rather than v0.0.0-master and tools that check
// the server version (Helm's kubeVersion, client skew warnings) behave.
func kubeLDFlags() string {
	v := strings.TrimPrefix(KubernetesVersion, "v")
	parts := strings.SplitN(v, ".", 3)
	flags := []string{"-s", "-w"}
	for _, pkg := range []string{"k8s.io/component-base/version", "k8s.io/client-go/pkg/version"} {
		flags = append(flags,
			"-X", pkg+".gitVersion="+KubernetesVersion,
			"-X", pkg+".gitMajor="+parts[0],
			"-X", pkg+".gitMinor="+parts[1],
			"-X", pkg+".gitTreeState=clean",
		)
	}
	return strings.Join(flags, " ")
}

// stagingModules returns the modules that a go.mod replaces with a directory
// under ./staging/, in file order.
func stagingModules(gomod []byte) []string {
	var mods []string
	inBlock := false
	sc := bufio.NewScanner(bytes.NewReader(gomod))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "replace (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "replace "):
			line = strings.TrimSpace(strings.TrimPrefix(line, "replace "))
		case !inBlock:
			continue
		}
		from, to, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		fromFields, toFields := strings.Fields(from), strings.Fields(to)
		if len(fromFields) == 0 || len(toFields) != 1 || !strings.HasPrefix(toFields[0], "./staging/") {
			continue
		}
		mods = append(mods, fromFields[0])
	}
	return mods
}

// buildEtcd builds etcd through a wrapper module: the etcd server module has
// a main package at its root, but its go.mod replaces its sibling modules
// with relative paths, which `go install mod@version` refuses.
func buildEtcd(ctx context.Context, work, out string) error {
	gomod := fmt.Sprintf("module msctl.test/etcd-build\n\ngo 1.26.0\n\nrequire %s %s\n", modEtcd, EtcdVersion)
	if err := os.WriteFile(filepath.Join(work, "go.mod"), []byte(gomod), 0o644); err != nil {
		return err
	}
	if err := runGo(ctx, work, "-mod=mod", "build", "-trimpath", "-ldflags", "-s -w", "-o", filepath.Join(out, binEtcd), modEtcd); err != nil {
		return fmt.Errorf("build etcd (%s@%s): %w", modEtcd, EtcdVersion, err)
	}
	return nil
}

// buildKwok installs kwok as published: its go.mod needs no help.
func buildKwok(ctx context.Context, work, out string) error {
	err := runGoEnv(ctx, work, "", []string{"GOBIN=" + out},
		"install", "-trimpath", "-ldflags", "-s -w", modKwok+"/cmd/kwok@"+KwokVersion)
	if err != nil {
		return fmt.Errorf("build kwok (%s@%s): %w", modKwok, KwokVersion, err)
	}
	return nil
}

type moduleInfo struct {
	Path, Version, Dir, GoMod, Error string
}

// downloadModules fetches modules into the module cache (through the Go
// module proxy unless they are already there) and reports where they are.
func downloadModules(ctx context.Context, work string, mods ...string) ([]moduleInfo, error) {
	var stdout bytes.Buffer
	cmd, tail := goCommand(ctx, work, "", nil, append([]string{"mod", "download", "-json"}, mods...)...)
	cmd.Stdout = &stdout
	runErr := cmd.Run()
	var infos []moduleInfo
	dec := json.NewDecoder(&stdout)
	for {
		var mi moduleInfo
		if err := dec.Decode(&mi); err == io.EOF {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go mod download %s: read its output: %w", strings.Join(mods, " "), err)
		}
		if mi.Error != "" {
			return nil, fmt.Errorf("go mod download %s@%s: %s", mi.Path, mi.Version, mi.Error)
		}
		infos = append(infos, mi)
	}
	if runErr != nil {
		return nil, fmt.Errorf("go mod download %s: %w\n%s", strings.Join(mods, " "), runErr, tail())
	}
	if len(infos) != len(mods) {
		return nil, fmt.Errorf("go mod download %s: got %d results, want %d", strings.Join(mods, " "), len(infos), len(mods))
	}
	return infos, nil
}

func runGo(ctx context.Context, dir, goflags string, args ...string) error {
	return runGoEnv(ctx, dir, goflags, nil, args...)
}

func runGoEnv(ctx context.Context, dir, goflags string, env []string, args ...string) error {
	cmd, tail := goCommand(ctx, dir, goflags, env, args...)
	cmd.Stdout = cmd.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", args[0], err, tail())
	}
	return nil
}

// goCommand prepares a go command isolated from the settings of whoever
// runs the tests: GOFLAGS such as -race, a go.work or cgo would change or
// break the build of the cluster binaries. Stderr is kept for error messages.
func goCommand(ctx context.Context, dir, goflags string, env []string, args ...string) (*exec.Cmd, func() string) {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0", "GOFLAGS="+goflags, "GOOS="+runtime.GOOS, "GOARCH="+runtime.GOARCH)
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = 5 * time.Second
	out := &tailBuffer{max: 8 << 10}
	cmd.Stderr = out
	return cmd, out.String
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.TrimSpace(string(b.buf))
}
