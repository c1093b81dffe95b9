// Package deploytest connects a Deployer to a test control plane, for the
// tests of deploy and of what builds on it. msctl itself never imports it.
package deploytest

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/testcluster"
)

// Project loads the bundled project (msctl.yaml at the module's root) with
// its namespace a fresh one of c.
func Project(t testing.TB, c *testcluster.Cluster) *config.Project {
	t.Helper()
	_, here, _, _ := runtime.Caller(0)
	l, err := config.Load(filepath.Join(filepath.Dir(here), "..", "..", "..", "msctl.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Project
	p.Namespace = c.Namespace(t)
	return p
}

// Deployer connects to c in p's namespace and returns a Deployer of p that
// logs nothing.
func Deployer(t testing.TB, c *testcluster.Cluster, p *config.Project) *deploy.Deployer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := kube.Connect(ctx, kube.ConnectOptions{Kubeconfig: c.Kubeconfig(), Namespace: p.Namespace})
	if err != nil {
		t.Fatal(err)
	}
	d, err := deploy.New(conn, p, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return d
}
