package deploykube

import (
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/deploy/deploytest"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/testcluster"
	appsv1 "k8s.io/api/apps/v1"
)

var cluster *testcluster.Cluster

func TestMain(m *testing.M) {
	flag.Parse()
	testcluster.Main(m, &cluster, testcluster.Options{})
}

// setup returns a Deployer for the bundled project in a fresh namespace.
func setup(t *testing.T) *deploy.Deployer {
	t.Helper()
	return deploytest.Deployer(t, cluster, deploytest.Project(t, cluster))
}

// holder is a lock identity for a test run named name.
func holder(name string) deploy.LockOptions {
	return deploy.LockOptions{Holder: kube.CurrentHolder(name, func(string) string { return "" })}
}

func deployOK(t *testing.T, d *deploy.Deployer, opts deploy.Options) []deploy.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if opts.Lock.Holder.Nonce == "" {
		opts.Lock = holder("test")
	}
	opts.Wait, opts.Atomic = true, true
	res, err := d.Deploy(ctx, opts)
	if err != nil {
		t.Fatalf("deploy: %v (%+v)", err, res)
	}
	return res
}

func states(res []deploy.Result) map[string]deploy.Result {
	m := map[string]deploy.Result{}
	for _, r := range res {
		m[r.Service] = r
	}
	return m
}

func available(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == "True"
		}
	}
	return false
}

// msctl runs the msctl binary against the test cluster in namespace ns.
func msctl(t *testing.T, ns string, env []string, args ...string) *exec.Cmd {
	cmd := exec.Command(cluster.Msctl(t), append([]string{"--config", "../../../msctl.yaml", "--kubeconfig", cluster.Kubeconfig(), "-n", ns}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return cmd
}

func exitCode(err error) int {
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}
