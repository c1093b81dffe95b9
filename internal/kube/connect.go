package kube

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"time"

	"github.com/msctl/msctl/internal/errkind"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ConnectOptions say which cluster to talk to.
type ConnectOptions struct {
	// Kubeconfig is an explicit kubeconfig path; empty means client-go's
	// rules (KUBECONFIG, then ~/.kube/config).
	Kubeconfig string
	// Context overrides the kubeconfig's current context.
	Context string
	// Namespace is the namespace msctl works in.
	Namespace string
	// Timeout bounds the reachability check and each API request's dial.
	Timeout time.Duration
}

// Cluster is a connection to one cluster, checked to answer.
type Cluster struct {
	Config    *rest.Config
	Clientset kubernetes.Interface
	// Getter hands the same connection to Helm's SDK.
	Getter genericclioptions.RESTClientGetter
	// Context and Host name the cluster in messages.
	Context   string
	Host      string
	Namespace string
}

// ConfigError is a kubeconfig problem: a missing file, an unknown context.
// It is bad input, as opposed to a cluster that does not answer.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// ErrorKind marks a kubeconfig problem as bad input.
func (e *ConfigError) ErrorKind() errkind.Kind { return errkind.BadInput }

// UnreachableError says a cluster did not answer, or refused msctl's
// credentials; it names the context and server.
type UnreachableError struct {
	Context, Host string
	Err           error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cluster of context %q (%s): %v", e.Context, e.Host, e.Err)
}
func (e *UnreachableError) Unwrap() error { return e.Err }

// Connect loads the kubeconfig and checks the cluster answers and accepts
// the credentials, so every later error is about the work, not the link.
func Connect(ctx context.Context, opts ConnectOptions) (*Cluster, error) {
	if opts.Timeout <= 0 {
		opts.Timeout = 15 * time.Second
	}
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	rules.ExplicitPath = opts.Kubeconfig
	overrides := &clientcmd.ConfigOverrides{CurrentContext: opts.Context}
	loader := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, overrides)
	raw, err := loader.RawConfig()
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("reading kubeconfig: %w", err)}
	}
	name := opts.Context
	if name == "" {
		name = raw.CurrentContext
	}
	if name == "" {
		return nil, &ConfigError{errors.New("the kubeconfig has no current context; pass --context")}
	}
	if _, ok := raw.Contexts[name]; !ok {
		return nil, &ConfigError{fmt.Errorf("context %q is not in the kubeconfig", name)}
	}
	cfg, err := loader.ClientConfig()
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("context %q: %w", name, err)}
	}
	cfg.Timeout = 0 // per request deadlines come from contexts
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("context %q: %w", name, err)}
	}
	c := &Cluster{Config: cfg, Clientset: cs, Context: name, Host: cfg.Host, Namespace: opts.Namespace}
	if err := c.ping(ctx, opts.Timeout); err != nil {
		return nil, err
	}
	flags := genericclioptions.NewConfigFlags(false)
	flags.KubeConfig = &opts.Kubeconfig
	flags.Context = &name
	flags.Namespace = &c.Namespace
	c.Getter = flags
	return c, nil
}

// ping asks the server for its version: a cheap call that needs a working
// connection and credentials the server accepts.
func (c *Cluster) ping(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := c.Clientset.Discovery().RESTClient().Get().AbsPath("/version").Do(ctx).Error()
	switch {
	case err == nil:
		return nil
	case apierrors.IsUnauthorized(err):
		return &UnreachableError{c.Context, c.Host, errors.New("the server refused the credentials (401 Unauthorized)")}
	case apierrors.IsForbidden(err):
		return nil // authenticated; what it may do is preflight's business
	case ctx.Err() != nil:
		return &UnreachableError{c.Context, c.Host, fmt.Errorf("no answer within %s", timeout)}
	}
	var urlErr *url.Error
	var opErr *net.OpError
	if errors.As(err, &opErr) {
		return &UnreachableError{c.Context, c.Host, fmt.Errorf("cannot connect: %v", opErr.Err)}
	}
	if errors.As(err, &urlErr) {
		return &UnreachableError{c.Context, c.Host, urlErr.Err}
	}
	return &UnreachableError{c.Context, c.Host, err}
}
