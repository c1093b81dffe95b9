// Package testcluster runs a real Kubernetes control plane for tests: etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler at pinned
// versions, with kwok simulating nodes and pods (pods are scheduled and turn
// Running and Ready, but no container runs), and the Istio, Prometheus
// Operator and VPA CRDs installed.
//
// It owns those processes and their temporary files and must never leave
// either behind. It is for tests and `make testcluster`; msctl itself never
// imports it.
package testcluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// dirPrefix names a cluster's temporary dir; the pid that follows lets a
// later start remove dirs of test binaries that died without cleaning up.
const dirPrefix = "msctl-testcluster-"

// Cluster is a running control plane. Its methods are safe for concurrent use.
type Cluster struct {
	dir        string
	kubeconfig string
	cfg        *rest.Config

	mu         sync.Mutex
	components []*component
	stopping   bool
	failed     chan struct{} // closed when a component exits on its own
	failErr    error

	stopOnce sync.Once
	stopErr  error

	msctlOnce sync.Once
	msctl     string
	msctlErr  error

	// startedAt and ready record how long each start step took after
	// startedAt, for the benchmark.
	startedAt time.Time
	ready     map[string]time.Duration
}

// Start builds the binaries if the cache lacks them, starts a control plane
// on free loopback ports and returns once it is usable: the API server is
// ready, the CRDs are established, the kwok nodes are Ready and the
// controllers run. On error nothing is left running; the cluster's dir with
// the components' logs is kept and named in the error.
//
// The API server holds a create of a custom resource for 2 s while its CRD
// is less than 2 s established (a guard meant for HA setups), so the first
// such create right after Start may take that long.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	p, err := prepare(ctx, opts)
	if err != nil {
		return nil, err
	}
	removeStaleDirs()
	c, err := startCluster(ctx, p, opts)
	if err != nil && strings.Contains(err.Error(), "address already in use") {
		// The ports were free when picked, but another process can take
		// one before the component binds it (ports of outgoing connections
		// come from the same range). Fresh ports almost surely do.
		c, err = startCluster(ctx, p, opts)
	}
	return c, err
}

func startCluster(ctx context.Context, p prepared, opts Options) (*Cluster, error) {
	dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-", dirPrefix, os.Getpid()))
	if err != nil {
		return nil, fmt.Errorf("start test cluster: %w", err)
	}
	c := &Cluster{
		dir:        dir,
		kubeconfig: filepath.Join(dir, "kubeconfig"),
		failed:     make(chan struct{}),
		startedAt:  time.Now(),
		ready:      map[string]time.Duration{},
	}
	ctx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	if err := c.start(ctx, p, opts); err != nil {
		_ = c.shutdown(true)
		return nil, fmt.Errorf("start test cluster (logs in %s): %w", dir, err)
	}
	return c, nil
}

func (c *Cluster) start(ctx context.Context, p prepared, opts Options) error {
	ports, err := freePorts(3)
	if err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", ports[1])
	host := fmt.Sprintf("https://127.0.0.1:%d", ports[2])
	tokenFile := filepath.Join(c.dir, "tokens.csv")
	token, err := writeTokenFile(tokenFile)
	if err != nil {
		return err
	}
	saKey := filepath.Join(c.dir, "service-account.key")
	if err := writeServiceAccountKey(saKey); err != nil {
		return err
	}
	certDir := filepath.Join(c.dir, "apiserver-certs")

	// A component that dies cancels the start at once, with its log in the error.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case <-c.failed:
			cancel(c.Err())
		case <-ctx.Done():
		}
	}()

	// The API server retries its etcd connection, so both start together.
	if err := c.run(p, binEtcd, nil,
		"--name=default",
		"--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+etcdURL,
		"--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL,
		"--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL,
		// Test data is thrown away: durability is not worth the fsyncs.
		"--unsafe-no-fsync=true",
		"--log-level=warn",
	); err != nil {
		return err
	}
	if err := c.run(p, binAPIServer, nil,
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1",
		"--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(ports[2]),
		"--cert-dir="+certDir,
		"--token-auth-file="+tokenFile,
		"--authorization-mode=RBAC",
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saKey,
		"--service-account-signing-key-file="+saKey,
		"--service-cluster-ip-range=10.0.0.0/24",
		"--allow-privileged=true",
		// The kubernetes Service cannot point at a loopback address; nothing
		// in a test reaches the API server through it.
		"--endpoint-reconciler-type=none",
		"--profiling=false",
	); err != nil {
		return err
	}
	cfg, err := waitAPIServer(ctx, host, token, certDir)
	if err != nil {
		return c.stepError(ctx, "wait for kube-apiserver /readyz", binAPIServer, err)
	}
	c.mark("apiserver")
	c.cfg = cfg
	if err := writeKubeconfig(c.kubeconfig, cfg); err != nil {
		return err
	}

	kc := c.kubeconfig
	if err := c.run(p, binControllerManager, nil,
		"--kubeconfig="+kc,
		"--authentication-kubeconfig="+kc,
		"--authorization-kubeconfig="+kc,
		"--service-account-private-key-file="+saKey,
		"--root-ca-file="+filepath.Join(certDir, "apiserver.crt"),
		"--leader-elect=false",
		"--secure-port=0",
		// Nodes are fake: no pod CIDRs to allocate, no kubelet heartbeats to judge.
		"--controllers=*,-nodeipam,-nodelifecycle",
		"--profiling=false",
	); err != nil {
		return err
	}
	if err := c.run(p, binScheduler, nil,
		"--kubeconfig="+kc,
		"--authentication-kubeconfig="+kc,
		"--authorization-kubeconfig="+kc,
		"--leader-elect=false",
		"--secure-port=0",
		"--profiling=false",
	); err != nil {
		return err
	}
	kwokConfig := filepath.Join(c.dir, "kwok.yaml")
	if err := writeKwokConfig(p.assets, kwokConfig); err != nil {
		return err
	}
	// kwok also loads ~/.kwok/kwok.yaml when it exists; a HOME of its own
	// keeps a developer's kwok setup out of the tests.
	if err := c.run(p, binKwok, []string{"HOME=" + filepath.Join(c.dir, "kwok-home")},
		"--kubeconfig="+kc,
		"--config="+kwokConfig,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+kwokNodeAnnotation+"=fake",
		"--cidr=10.244.0.0/16",
		"--node-ip=10.99.0.1",
	); err != nil {
		return err
	}

	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	crds, err := crdFiles(p.assets, opts.AllCRDs)
	if err != nil {
		return err
	}
	// The three waits are independent; running them together, while the
	// controller manager, scheduler and kwok start up, keeps a warm start
	// short. (Applying the CRDs before /readyz passes was tried: on two
	// cores it only moved the wait, as the API server's start-up and the
	// CRD install compete for the same CPU.)
	var wg sync.WaitGroup
	errs := make([]error, 3)
	wg.Go(func() {
		if err := installCRDs(ctx, cfg, crds); err != nil {
			errs[0] = c.stepError(ctx, "install CRDs", binAPIServer, err)
		}
		c.mark("crds")
	})
	wg.Go(func() {
		if err := createNodes(ctx, cs, opts.Nodes); err != nil {
			errs[1] = c.stepError(ctx, "create kwok nodes", binKwok, err)
		}
		c.mark("nodes")
	})
	wg.Go(func() {
		// The controller manager's service account controller creates it:
		// proof that the controllers run, and pods need it to be admitted.
		if err := waitServiceAccount(ctx, cs, "default"); err != nil {
			errs[2] = c.stepError(ctx, "wait for the default service account", binControllerManager, err)
		}
		c.mark("controllers")
	})
	wg.Wait()
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause // a component died: its error explains the rest
	}
	return errors.Join(errs...)
}

func (c *Cluster) mark(step string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ready[step] = time.Since(c.startedAt)
}

// run starts a component and watches it: exiting before Stop marks the cluster failed.
func (c *Cluster) run(p prepared, name string, env []string, args ...string) error {
	comp, err := startComponent(c.dir, name, filepath.Join(p.bin, name), args, env)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.components = append(c.components, comp)
	c.mu.Unlock()
	go func() {
		<-comp.exited
		c.mu.Lock()
		defer c.mu.Unlock()
		if !c.stopping && c.failErr == nil {
			c.failErr = comp.exitError()
			close(c.failed)
		}
	}()
	return nil
}

// stepError explains a failed start step: by the component that died, if
// one did, else by the step's error and the log of the component it waited on.
func (c *Cluster) stepError(ctx context.Context, step, waitedOn string, err error) error {
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, comp := range c.components {
		if comp.name == waitedOn {
			return fmt.Errorf("%s: %w\n%s", step, err, comp.logTail())
		}
	}
	return fmt.Errorf("%s: %w", step, err)
}

// waitAPIServer polls /readyz until the API server reports ready and returns
// a client config that trusts its self-signed serving certificate.
func waitAPIServer(ctx context.Context, host, token, certDir string) (*rest.Config, error) {
	// The probe skips verification: the certificate it would check is only
	// written by the server it probes, on loopback. Clients verify it.
	probe := &http.Client{
		Timeout:   2 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	}
	defer probe.CloseIdleConnections()
	var last string
	err := poll(ctx, 100*time.Millisecond, func() (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, host+"/readyz", nil)
		if err != nil {
			return false, err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := probe.Do(req)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		_ = resp.Body.Close()
		last = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(body)))
		return resp.StatusCode == http.StatusOK, nil
	})
	if err != nil {
		return nil, fmt.Errorf("%w (last answer: %s)", err, last)
	}
	ca, err := os.ReadFile(filepath.Join(certDir, "apiserver.crt"))
	if err != nil {
		return nil, fmt.Errorf("read the API server's certificate: %w", err)
	}
	return &rest.Config{
		Host:            host,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		// client-go's default of 5 requests per second would make the CRD
		// install and busy tests wait on the client, not the server.
		QPS:   200,
		Burst: 400,
	}, nil
}

// poll calls cond every interval until it reports done, returns an error,
// or ctx ends.
func poll(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	for {
		done, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-time.After(interval):
		}
	}
}

// Kubeconfig returns the path of a kubeconfig for the cluster's admin user
// (group system:masters), for msctl --kubeconfig, kubectl or Helm.
func (c *Cluster) Kubeconfig() string { return c.kubeconfig }

// RESTConfig returns a new copy of the admin client config, so callers may change it.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.cfg) }

// Dir returns the cluster's temporary dir, which holds each component's log.
func (c *Cluster) Dir() string { return c.dir }

// Failed is closed when a component exits before Stop; Err then says which and why.
func (c *Cluster) Failed() <-chan struct{} { return c.failed }

// Err returns why the cluster failed, with the end of the failed component's
// log, or nil while every component runs.
func (c *Cluster) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failErr
}

// Stop stops every component, waits for them to exit and removes the
// cluster's dir. It returns Err as well, so a component that crashed during
// the tests is reported. Calling it again returns the same result.
func (c *Cluster) Stop() error { return c.shutdown(false) }

// shutdown stops the components and, unless keepDir, removes the cluster's dir.
func (c *Cluster) shutdown(keepDir bool) error {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.stopping = true
		comps := slices.Clone(c.components)
		failErr := c.failErr
		c.mu.Unlock()

		var wg sync.WaitGroup
		for _, comp := range comps {
			wg.Go(comp.stop)
		}
		wg.Wait()
		var errs []error
		if failErr != nil {
			errs = append(errs, failErr)
		}
		if !keepDir {
			if err := os.RemoveAll(c.dir); err != nil {
				errs = append(errs, fmt.Errorf("remove test cluster dir: %w", err))
			}
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// removeStaleDirs removes the dirs of clusters whose test binary is gone:
// a panic or a test timeout ends the process before Stop runs (Pdeathsig
// still ends the components). Dirs of live processes are left alone.
func removeStaleDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, d := range dirs {
		rest := strings.TrimPrefix(filepath.Base(d), dirPrefix)
		pidText, _, ok := strings.Cut(rest, "-")
		pid, err := strconv.Atoi(pidText)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}
