// Package deploytest connects a Deployer to a test control plane, for the
// tests of deploy and of what builds on it. msctl itself never imports it.
package deploytest

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/testcluster"
)

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
