package local

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
)

// BuildTarget is one service binary to build: the Go package in Dir,
// written to Out.
type BuildTarget struct {
	Service string
	Dir     string
	Out     string
}

// Build runs `go build` for each target, at most parallel at once. go build
// leaves an up-to-date binary alone, so a second build costs little. A
// failed build is named with the compiler's output.
func Build(ctx context.Context, targets []BuildTarget, parallel int) error {
	// One go command for all: it loads the shared packages once, which
	// makes checking up-to-date binaries about three times cheaper.
	if len(targets) > 1 && sameOutDir(targets) {
		return goBuildAll(ctx, targets, parallel)
	}
	sem := make(chan struct{}, max(parallel, 1))
	errs := make([]error, len(targets))
	var wg sync.WaitGroup
	for i, t := range targets {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			errs[i] = goBuild(ctx, t)
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// BuildService builds the service whose Go package is in srcDir (a working
// tree or a checkout of another revision) into runDir, and returns the
// binary's path. Each source directory gets its own binary, so a canary's
// build never replaces the stable's.
func BuildService(ctx context.Context, runDir, service, srcDir string) (string, error) {
	abs, err := filepath.Abs(srcDir)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256([]byte(abs))
	out := filepath.Join(runDir, "bin", "builds", service+"-"+hex.EncodeToString(sum[:6]))
	return out, goBuild(ctx, BuildTarget{Service: service, Dir: abs, Out: out})
}

// sameOutDir reports whether go build -o DIR/ names every binary right:
// one output directory, each binary named after its package's directory.
func sameOutDir(targets []BuildTarget) bool {
	for _, t := range targets {
		if filepath.Dir(t.Out) != filepath.Dir(targets[0].Out) || filepath.Base(t.Out) != filepath.Base(t.Dir) {
			return false
		}
	}
	return true
}

func goBuildAll(ctx context.Context, targets []BuildTarget, parallel int) error {
	outDir, err := filepath.Abs(filepath.Dir(targets[0].Out))
	if err != nil {
		return err
	}
	names := make([]string, len(targets))
	args := []string{"build", "-p", strconv.Itoa(max(parallel, 1)), "-o", outDir + string(filepath.Separator)}
	for i, t := range targets {
		dir, err := filepath.EvalSymlinks(t.Dir)
		if err != nil {
			return fmt.Errorf("building %s: %w", t.Service, err)
		}
		names[i] = t.Service
		args = append(args, dir)
	}
	return runGo(ctx, args[len(args)-1], strings.Join(names, ", "), outDir, args)
}

func goBuild(ctx context.Context, t BuildTarget) error {
	out, err := filepath.Abs(t.Out)
	if err != nil {
		return err
	}
	// go finds the module from the real directory, not a symlink's.
	dir, err := filepath.EvalSymlinks(t.Dir)
	if err != nil {
		return fmt.Errorf("building %s: %w", t.Service, err)
	}
	return runGo(ctx, dir, t.Service, filepath.Dir(out), []string{"build", "-o", out, "."})
}

// runGo runs the go command in dir, creating outDir first; a failure
// names what was built, with the compiler's output.
func runGo(ctx context.Context, dir, what, outDir string, args []string) error {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("building %s: %v\n%s", what, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
