package cli

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"time"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/kube"
)

// deployer checks the named services exist in the project, then connects
// to the project's cluster: --kubeconfig, --context and --namespace (or
// their variables, or the project file) say which.
func (f *Factory) deployer(ctx context.Context, services []string) (*deploy.Deployer, error) {
	loaded, err := f.Project()
	if err != nil {
		return nil, err
	}
	p := loaded.Project
	if err := checkServices(p, services); err != nil {
		return nil, err
	}
	f.Log.Debug("connecting", "context", p.Kube.Context, "kubeconfig", p.Kube.Kubeconfig, "namespace", p.Namespace)
	c, err := kube.Connect(ctx, kube.ConnectOptions{Kubeconfig: p.Kube.Kubeconfig, Context: p.Kube.Context, Namespace: p.Namespace})
	if err != nil {
		return nil, err
	}
	return deploy.New(c, p, f.Log)
}

// holderIdentity names this run in locks: the CI job when a CI system says
// which, else user@host and the process id.
func holderIdentity() string {
	if v := os.Getenv("MSCTL_HOLDER"); v != "" {
		return v
	}
	for _, ci := range []struct{ name, env string }{
		{"github-actions", "GITHUB_RUN_ID"}, {"gitlab", "CI_JOB_ID"}, {"buildkite", "BUILDKITE_JOB_ID"},
		{"jenkins", "BUILD_TAG"}, {"circleci", "CIRCLE_WORKFLOW_JOB_ID"},
	} {
		if v := os.Getenv(ci.env); v != "" {
			if a := os.Getenv("GITHUB_RUN_ATTEMPT"); ci.env == "GITHUB_RUN_ID" && a != "" {
				v += "-" + a
			}
			return ci.name + " " + v
		}
	}
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s@%s pid %d", name, host, os.Getpid())
}

// checkTimeout refuses timeouts too short to mean anything.
func checkTimeout(flag string, d time.Duration) error {
	if d < time.Second {
		return &UsageError{Err: fmt.Errorf("--%s %s is below the minimum of 1s", flag, d)}
	}
	return nil
}
