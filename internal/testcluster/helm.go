package testcluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// HelmVersion is the Helm CLI that tests check msctl's charts and releases
// against.
const HelmVersion = "v4.3.1"

// HelmCLI returns the pinned helm binary, installing it into msctl's tool
// cache on first use (as make does for its tools).
func HelmCLI(t testing.TB) string {
	t.Helper()
	cache := os.Getenv("XDG_CACHE_HOME")
	if cache == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			t.Fatal(err)
		}
		cache = filepath.Join(home, ".cache")
	}
	dir := filepath.Join(cache, "msctl", "tools", "helm-"+HelmVersion)
	bin := filepath.Join(dir, "helm")
	if _, err := os.Stat(bin); err == nil {
		return bin
	}
	t.Logf("installing helm %s into %s", HelmVersion, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "install", "helm.sh/helm/v4/cmd/helm@"+HelmVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("installing helm %s: %v\n%s", HelmVersion, err, out)
	}
	return bin
}

// Msctl returns an msctl binary built from this module, once per cluster,
// into the cluster's dir (which goes when the cluster stops).
func (c *Cluster) Msctl(t testing.TB) string {
	t.Helper()
	c.msctlOnce.Do(func() {
		path := filepath.Join(c.Dir(), "msctl")
		out, err := exec.Command("go", "build", "-o", path, "github.com/msctl/msctl/cmd/msctl").CombinedOutput()
		if err != nil {
			c.msctlErr = fmt.Errorf("building msctl: %v\n%s", err, out)
			return
		}
		c.msctl = path
	})
	if c.msctlErr != nil {
		t.Fatal(c.msctlErr)
	}
	return c.msctl
}
