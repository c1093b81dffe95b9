package testcluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	apinetworkingv1 "istio.io/api/networking/v1"
	istionetworkingv1 "istio.io/client-go/pkg/apis/networking/v1"
	istioclient "istio.io/client-go/pkg/clientset/versioned"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/msctl/msctl/internal/testcluster"
)

var cluster *testcluster.Cluster

// abortEnv makes the test binary a helper for TestAbortedTestBinary: it
// starts a cluster as TestMain would, records its pids and then panics or
// waits for a signal, as named by the variable.
const (
	abortEnv     = "MSCTL_TESTCLUSTER_ABORT"
	abortPIDsEnv = "MSCTL_TESTCLUSTER_ABORT_PIDS"
)

func TestMain(m *testing.M) {
	if how := os.Getenv(abortEnv); how != "" {
		var c *testcluster.Cluster
		os.Exit(testcluster.RunMain(abortingTests{how: how, cluster: &c}, &c, testcluster.Options{}))
	}
	testcluster.Main(m, &cluster, testcluster.Options{})
}

// abortingTests stands in for a test run that panics or hangs until interrupted.
type abortingTests struct {
	how     string
	cluster **testcluster.Cluster
}

func (a abortingTests) Run() int {
	data, err := json.Marshal((*a.cluster).ComponentPIDs())
	if err == nil {
		err = os.WriteFile(os.Getenv(abortPIDsEnv), data, 0o644)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if a.how == "panic" {
		panic("a test panics on purpose")
	}
	select {} // until SIGINT
}

func clientset(t *testing.T) kubernetes.Interface {
	t.Helper()
	cs, err := kubernetes.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// waitFor polls cond until it holds or the timeout passes; describe says
// what was last seen, for the failure message.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(ctx context.Context) (bool, string)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var last string
	for {
		ok, seen := cond(ctx)
		if ok {
			return
		}
		last = seen
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not after %s; last seen: %s", what, timeout, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestKubeconfig goes through the kubeconfig file, as msctl --kubeconfig
// and kubectl do, and checks the version the binaries were stamped with.
func TestKubeconfig(t *testing.T) {
	cfg, err := clientcmd.BuildConfigFromFlags("", cluster.Kubeconfig())
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	v, err := cs.Discovery().ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != testcluster.KubernetesVersion {
		t.Errorf("server version %s, want %s", v.GitVersion, testcluster.KubernetesVersion)
	}
}

func TestDeploymentBecomesAvailable(t *testing.T) {
	ns := cluster.Namespace(t)
	cs := clientset(t)
	dep := deployment("web", 3, nil)
	if _, err := cs.AppsV1().Deployments(ns).Create(t.Context(), dep, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "deployment web 3/3 available", func(ctx context.Context) (bool, string) {
		d, err := cs.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := d.Status
		seen := fmt.Sprintf("observedGeneration=%d replicas=%d ready=%d available=%d", s.ObservedGeneration, s.Replicas, s.ReadyReplicas, s.AvailableReplicas)
		return s.ObservedGeneration >= d.Generation && s.AvailableReplicas == 3 && s.UpdatedReplicas == 3, seen
	})
	pods, err := cs.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		if p.Spec.NodeName == "" || p.Status.Phase != corev1.PodRunning || p.Status.PodIP == "" {
			t.Errorf("pod %s: node %q phase %s ip %q, want scheduled, Running, with an IP", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP)
		}
	}
}

func TestVirtualServiceRoundTrip(t *testing.T) {
	ns := cluster.Namespace(t)
	ic, err := istioclient.NewForConfig(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	vs := &istionetworkingv1.VirtualService{
		ObjectMeta: metav1.ObjectMeta{Name: "user"},
		Spec: apinetworkingv1.VirtualService{
			Hosts: []string{"user"},
			Http: []*apinetworkingv1.HTTPRoute{{
				Route: []*apinetworkingv1.HTTPRouteDestination{
					{Destination: &apinetworkingv1.Destination{Host: "user", Subset: "stable"}, Weight: 90},
					{Destination: &apinetworkingv1.Destination{Host: "user", Subset: "canary"}, Weight: 10},
				},
			}},
		},
	}
	if _, err := ic.NetworkingV1().VirtualServices(ns).Create(t.Context(), vs, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	got, err := ic.NetworkingV1().VirtualServices(ns).Get(t.Context(), "user", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Spec.Hosts) != 1 || got.Spec.Hosts[0] != "user" {
		t.Errorf("hosts %v, want [user]", got.Spec.Hosts)
	}
	if len(got.Spec.Http) != 1 || len(got.Spec.Http[0].Route) != 2 {
		t.Fatalf("http routes %v, want one route with two destinations", got.Spec.Http)
	}
	var weights []string
	for _, r := range got.Spec.Http[0].Route {
		weights = append(weights, fmt.Sprintf("%s=%d", r.Destination.Subset, r.Weight))
	}
	if w := strings.Join(weights, ","); w != "stable=90,canary=10" {
		t.Errorf("weights %s, want stable=90,canary=10", w)
	}
}

func TestFailReadinessLabel(t *testing.T) {
	ns := cluster.Namespace(t)
	cs := clientset(t)
	for name, labels := range map[string]map[string]string{
		"healthy": nil,
		"broken":  {testcluster.FailReadinessLabel: "true"},
	} {
		if _, err := cs.CoreV1().Pods(ns).Create(t.Context(), pod(name, labels), metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 30*time.Second, "pod healthy Ready and pod broken Running", func(ctx context.Context) (bool, string) {
		healthy, err1 := cs.CoreV1().Pods(ns).Get(ctx, "healthy", metav1.GetOptions{})
		broken, err2 := cs.CoreV1().Pods(ns).Get(ctx, "broken", metav1.GetOptions{})
		if err := errors.Join(err1, err2); err != nil {
			return false, err.Error()
		}
		return isReady(healthy) && broken.Status.Phase == corev1.PodRunning,
			fmt.Sprintf("healthy %s ready=%v, broken %s ready=%v", healthy.Status.Phase, isReady(healthy), broken.Status.Phase, isReady(broken))
	})
	// kwok acts on pods within milliseconds; if a stage were to make the
	// broken pod Ready, it would within this window.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		broken, err := cs.CoreV1().Pods(ns).Get(t.Context(), "broken", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if isReady(broken) || broken.Status.Phase != corev1.PodRunning {
			t.Fatalf("pod with %s=true: phase %s ready %v, want Running and never Ready", testcluster.FailReadinessLabel, broken.Status.Phase, isReady(broken))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestStopLeavesNoProcess starts a second control plane next to the
// package's one and checks that Stop ends every process of it and removes
// its dir.
func TestStopLeavesNoProcess(t *testing.T) {
	c, err := testcluster.Start(t.Context(), testcluster.Options{Log: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	pids := c.ComponentPIDs()
	if len(pids) != 5 {
		t.Errorf("components %v, want 5", pids)
	}
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); err != nil {
			t.Errorf("%s (pid %d) not running before Stop: %v", name, pid, err)
		}
	}
	dir := c.Dir()
	if err := c.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	for name, pid := range pids {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			t.Errorf("%s (pid %d) still exists after Stop", name, pid)
		}
		if left := processesInGroup(t, pid); len(left) > 0 {
			t.Errorf("process group of %s (%d) still has processes %v after Stop", name, pid, left)
		}
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster dir %s still exists after Stop (err %v)", dir, err)
	}
}

// TestAbortedTestBinary runs this test binary as a test package whose tests
// panic or are interrupted with Ctrl-C, and checks that no process of its
// control plane survives it.
func TestAbortedTestBinary(t *testing.T) {
	for _, how := range []string{"panic", "interrupt"} {
		t.Run(how, func(t *testing.T) {
			pidFile := filepath.Join(t.TempDir(), "pids.json")
			outFile, err := os.Create(filepath.Join(t.TempDir(), "output"))
			if err != nil {
				t.Fatal(err)
			}
			defer outFile.Close()
			output := func() string { b, _ := os.ReadFile(outFile.Name()); return string(b) }
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), abortEnv+"="+how, abortPIDsEnv+"="+pidFile)
			cmd.Stdout, cmd.Stderr = outFile, outFile
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			helperDirs := filepath.Join(os.TempDir(), fmt.Sprintf("msctl-testcluster-%d-*", cmd.Process.Pid))
			t.Cleanup(func() {
				// A panic leaves the dir for the next Start to sweep; don't wait for one.
				dirs, _ := filepath.Glob(helperDirs)
				for _, d := range dirs {
					_ = os.RemoveAll(d)
				}
			})

			var pids map[string]int
			waitFor(t, 90*time.Second, "helper's cluster up", func(context.Context) (bool, string) {
				data, err := os.ReadFile(pidFile)
				if err != nil || json.Unmarshal(data, &pids) != nil {
					return false, output()
				}
				return true, ""
			})
			if len(pids) != 5 {
				t.Fatalf("helper's components %v, want 5", pids)
			}
			if how == "interrupt" {
				if err := cmd.Process.Signal(os.Interrupt); err != nil {
					t.Fatal(err)
				}
			}
			select {
			case err := <-exited:
				if err == nil {
					t.Fatalf("helper exited 0, want a failure; output:\n%s", output())
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Fatalf("helper did not exit; output:\n%s", output())
			}
			// Pdeathsig is delivered as the helper exits, but reaping the
			// components is not instant.
			waitFor(t, 10*time.Second, "no process of the helper's cluster left", func(context.Context) (bool, string) {
				var left []string
				for name, pid := range pids {
					if g := processesInGroup(t, pid); len(g) > 0 {
						left = append(left, fmt.Sprintf("%s: %v", name, g))
					}
				}
				return len(left) == 0, strings.Join(left, "; ")
			})
			if how == "interrupt" {
				if dirs, _ := filepath.Glob(helperDirs); len(dirs) > 0 {
					t.Errorf("interrupted helper left its cluster dir %v", dirs)
				}
			}
		})
	}
}

// processesInGroup lists the pids in process group pgid, from /proc.
func processesInGroup(t *testing.T, pgid int) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, s := range stats {
		data, err := os.ReadFile(s)
		if err != nil {
			continue // the process ended while we looked
		}
		// Fields after the parenthesised command name: state ppid pgrp ...
		i := strings.LastIndexByte(string(data), ')')
		fields := strings.Fields(string(data[i+1:]))
		if len(fields) < 3 {
			continue
		}
		if g, _ := strconv.Atoi(fields[2]); g == pgid {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(s)))
			pids = append(pids, pid)
		}
	}
	return pids
}

func deployment(name string, replicas int32, labels map[string]string) *appsv1.Deployment {
	tmpl := pod(name, labels)
	tmpl.Name = ""
	tmpl.Labels["app"] = name
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec},
		},
	}
}

func pod(name string, labels map[string]string) *corev1.Pod {
	l := map[string]string{}
	for k, v := range labels {
		l[k] = v
	}
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:v1"}},
		},
	}
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// BenchmarkStart measures a warm start (binaries cached) to a usable
// cluster: API server ready, CRDs established, kwok node Ready, controllers
// running; all-crds adds the Prometheus Operator's workload CRDs. It runs
// next to the package's shared cluster, which sits idle.
func BenchmarkStart(b *testing.B) {
	for _, bc := range []struct {
		name string
		opts testcluster.Options
	}{
		{"default", testcluster.Options{Log: io.Discard}},
		{"all-crds", testcluster.Options{Log: io.Discard, AllCRDs: true}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var stopTotal time.Duration
			steps := map[string]time.Duration{}
			for b.Loop() {
				c, err := testcluster.Start(b.Context(), bc.opts)
				if err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				for step, d := range c.StartSteps() {
					steps[step] += d
				}
				t0 := time.Now()
				if err := c.Stop(); err != nil {
					b.Fatal(err)
				}
				stopTotal += time.Since(t0)
				b.StartTimer()
			}
			b.ReportMetric(float64(stopTotal.Milliseconds())/float64(b.N), "stop-ms/op")
			for step, d := range steps {
				b.ReportMetric(float64(d.Milliseconds())/float64(b.N), step+"-ready-ms/op")
			}
		})
	}
}
