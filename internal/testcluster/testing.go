package testcluster

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/testenv"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Main runs a test package against one control plane:
//
//	var cluster *testcluster.Cluster
//
//	func TestMain(m *testing.M) { testcluster.Main(m, &cluster, testcluster.Options{}) }
//
// It starts the cluster, stores it in *c, runs the tests, stops the cluster
// and exits with the tests' code. When the cluster cannot start the package
// fails with the reason: tests that need a cluster never skip. SIGINT and
// SIGTERM stop the cluster before the process exits. After failed tests the
// components' logs are kept, and their dir printed, until a later start
// sweeps the dirs of exited test binaries.
func Main(m *testing.M, c **Cluster, opts Options) {
	if testenv.SkipPackage("a Kubernetes control plane") {
		os.Exit(0)
	}
	os.Exit(run(m, c, opts))
}

// testRunner is what run needs of *testing.M; the tests pass their own to
// check what happens when a test binary is interrupted or panics.
type testRunner interface{ Run() int }

func run(m testRunner, c **Cluster, opts Options) int {
	// m.Run would parse the flags, but -v must be known before it.
	if !flag.Parsed() {
		flag.Parse()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var (
		mu          sync.Mutex
		running     *Cluster
		interrupted bool
	)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		s := <-sigs
		mu.Lock()
		interrupted = true
		cancel() // ends a start in progress, which cleans up after itself
		if running != nil {
			fmt.Fprintf(os.Stderr, "testcluster: %v: stopping the control plane\n", s)
			_ = running.Stop()
			os.Exit(1)
		}
		mu.Unlock()
	}()

	start := time.Now()
	cluster, err := Start(ctx, opts)
	mu.Lock()
	if err == nil && interrupted {
		_ = cluster.Stop()
		err = fmt.Errorf("interrupted")
	}
	if err == nil {
		running = cluster
	}
	mu.Unlock()
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: testcluster: %v\n", err)
		return 1
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "testcluster: control plane up in %s (logs in %s)\n", time.Since(start).Round(10*time.Millisecond), cluster.Dir())
	}
	*c = cluster

	code := m.Run()

	mu.Lock()
	running = nil
	mu.Unlock()
	if code != 0 {
		if err := cluster.shutdown(true); err != nil {
			fmt.Fprintf(os.Stderr, "testcluster: %v\n", err)
		}
		fmt.Fprintf(os.Stderr, "testcluster: tests failed; component logs kept in %s\n", cluster.Dir())
		return code
	}
	if err := cluster.Stop(); err != nil {
		// A component that crashed during the run fails the package even
		// when every test passed: the tests ran against a broken cluster.
		fmt.Fprintf(os.Stderr, "FAIL: testcluster: %v\n", err)
		return 1
	}
	return code
}

// Namespace creates a namespace for one test, named after it, and deletes
// it when the test ends, so tests sharing a cluster do not see each other's
// objects. It returns once pods can be created there.
func (c *Cluster) Namespace(t testing.TB) string {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.RESTConfig())
	if err != nil {
		t.Fatalf("testcluster: client: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ns, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{
		ObjectMeta: metav1.ObjectMeta{GenerateName: namespacePrefix(t.Name())},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("testcluster: create namespace: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := cs.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("testcluster: delete namespace %s: %v", ns.Name, err)
		}
	})
	if err := waitServiceAccount(ctx, cs, ns.Name); err != nil {
		t.Fatalf("testcluster: namespace %s: %v", ns.Name, err)
	}
	return ns.Name
}

// namespacePrefix turns a test name into a valid namespace name prefix.
func namespacePrefix(testName string) string {
	var b strings.Builder
	dash := true // no leading dash
	for _, r := range strings.ToLower(testName) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash {
			b.WriteByte('-')
			dash = true
		}
		// generateName adds 5 characters; names may have 63.
		if b.Len() >= 40 {
			break
		}
	}
	p := strings.TrimRight(b.String(), "-")
	if p == "" {
		p = "test"
	}
	return p + "-"
}
