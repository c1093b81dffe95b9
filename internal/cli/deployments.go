package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/msctl/msctl/internal/deploy"
	"github.com/msctl/msctl/internal/kube"
	"github.com/spf13/pflag"
)

// Deployments is what the cluster commands need of internal/deploy. The
// Factory hands out the real one, connected to the project's cluster;
// tests hand in their own to check flags and output without a cluster.
type Deployments interface {
	Deploy(context.Context, deploy.Options) ([]deploy.Result, error)
	Plan(context.Context, deploy.Options) ([]deploy.Change, error)
	Status(ctx context.Context, services []string) ([]deploy.ServiceStatus, error)
	History(ctx context.Context, service string) ([]deploy.Revision, error)
	Rollback(ctx context.Context, service string, opts deploy.RollbackOptions) (deploy.Result, error)
	Destroy(context.Context, deploy.DestroyOptions) ([]deploy.Result, error)
}

// connectDeployments connects to the project's cluster: --kubeconfig,
// --context and --namespace (or their variables, or the project file) say
// which.
func (f *Factory) connectDeployments(ctx context.Context) (Deployments, error) {
	loaded, err := f.projectExceptCanary()
	if err != nil {
		return nil, err
	}
	p := loaded.Project
	f.Log.Debug("connecting", "context", p.Kube.Context, "kubeconfig", p.Kube.Kubeconfig, "namespace", p.Namespace)
	c, err := kube.Connect(ctx, kube.ConnectOptions{Kubeconfig: p.Kube.Kubeconfig, Context: p.Kube.Context, Namespace: p.Namespace})
	if err != nil {
		return nil, err
	}
	return deploy.New(c, p, f.Log)
}

// lockFlags are the flags of every command that writes a service under its
// Lease.
type lockFlags struct {
	ttl   time.Duration
	steal bool
}

const lockHelp = `Each service is locked by a coordination.k8s.io Lease while msctl writes it;
a run that finds one held by another fails at once with exit code 7, naming
the holder and since when. The holder is the CI job (GitHub Actions, GitLab,
Buildkite, Jenkins, CircleCI) or user@host, or MSCTL_HOLDER when set, plus
this machine, the process id and a random nonce, so two jobs of one CI run
never share a lock. A lock whose holder stopped renewing lapses after
--lock-ttl, judged on this machine's clock; one held by a process of this
machine that no longer runs is taken over at once. --steal-lock takes over a
live lock on purpose; the takeover is logged.`

func (l *lockFlags) register(fs *pflag.FlagSet) {
	fs.DurationVar(&l.ttl, "lock-ttl", kube.DefaultLockTTL, "how long the service's lock outlives this run if it stops renewing it")
	fs.BoolVar(&l.steal, "steal-lock", false, "take over a lock another run holds (it will stop writing)")
}

func (l *lockFlags) validate() error {
	if l.ttl < 2*time.Second || l.ttl > time.Hour || l.ttl%time.Second != 0 {
		return &UsageError{Err: fmt.Errorf("--lock-ttl %s: want whole seconds from 2s to 1h", l.ttl)}
	}
	return nil
}

// options identify this process in Leases: MSCTL_HOLDER or the CI job for
// people to read, and this process to tell runs apart.
func (l *lockFlags) options() deploy.LockOptions {
	return deploy.LockOptions{Holder: kube.CurrentHolder(os.Getenv("MSCTL_HOLDER"), os.Getenv), TTL: l.ttl, Steal: l.steal}
}

// checkTimeout refuses timeouts too short to mean anything.
func checkTimeout(flag string, d time.Duration) error {
	if d < time.Second {
		return &UsageError{Err: fmt.Errorf("--%s %s is below the minimum of 1s", flag, d)}
	}
	return nil
}
