// Command testcluster runs a local Kubernetes control plane (etcd,
// kube-apiserver, kube-controller-manager, kube-scheduler, with kwok
// simulating nodes and pods) in the foreground until Ctrl-C. It is what
// `make testcluster` runs.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/msctl/msctl/internal/testcluster"
)

func main() {
	os.Exit(run())
}

func run() int {
	prepareOnly := flag.Bool("prepare", false, "only build the binaries and fetch the CRDs into the cache, then exit")
	nodes := flag.Int("nodes", 1, "number of kwok nodes")
	allCRDs := flag.Bool("all-crds", false, "also install the Prometheus Operator's workload CRDs (Prometheus, Alertmanager, ...); slower start")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	opts := testcluster.Options{Nodes: *nodes, AllCRDs: *allCRDs}
	if *prepareOnly {
		if err := testcluster.Prepare(ctx, opts); err != nil {
			fmt.Fprintln(os.Stderr, "testcluster:", err)
			return 1
		}
		return 0
	}

	start := time.Now()
	c, err := testcluster.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		return 1
	}
	kc := c.Kubeconfig()
	fmt.Printf(`Kubernetes %s test control plane is up (%d kwok node(s), ready in %s).

  kubeconfig: %s
  logs:       %s

Use it:
  msctl --kubeconfig %s deploy
  kubectl --kubeconfig %s get pods -A     (if you have kubectl)
  export KUBECONFIG=%s

Pods are simulated by kwok: they are scheduled and become Running and Ready,
but no container runs. A pod labelled %s=true stays Running
and never becomes Ready. The Istio and VPA CRDs are installed, and the
Prometheus Operator's ServiceMonitor, PodMonitor, Probe and PrometheusRule
(all of its CRDs with -all-crds).

Press Ctrl-C to stop.
`, testcluster.KubernetesVersion, *nodes, time.Since(start).Round(100*time.Millisecond),
		kc, c.Dir(), kc, kc, kc, testcluster.FailReadinessLabel)

	code := 0
	select {
	case <-ctx.Done():
		fmt.Fprintln(os.Stderr, "\nstopping the control plane")
	case <-c.Failed():
		code = 1
	}
	if err := c.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "testcluster:", err)
		code = 1
	}
	return code
}
