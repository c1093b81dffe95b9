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

func goBuild(ctx context.Context, t BuildTarget) error {
	if err := os.MkdirAll(filepath.Dir(t.Out), 0o755); err != nil {
		return err
	}
	out, err := filepath.Abs(t.Out)
	if err != nil {
		return err
	}
	// go finds the module from the real directory, not a symlink's.
	dir, err := filepath.EvalSymlinks(t.Dir)
	if err != nil {
		return fmt.Errorf("building %s: %w", t.Service, err)
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("building %s in %s: %v\n%s", t.Service, t.Dir, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}
