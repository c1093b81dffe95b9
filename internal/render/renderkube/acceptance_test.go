package renderkube

import (
	"context"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
	"github.com/msctl/msctl/internal/routes"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
)

// warnings collects the API server's warnings, which is where Pod Security
// admission reports a workload that would violate the namespace's profile.
type warnings struct {
	mu   sync.Mutex
	list []string
}

func (w *warnings) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.list = append(w.list, text)
}

// The rendered objects are accepted by a real API server with the Istio,
// Prometheus Operator and VPA CRDs, in a namespace that enforces the Pod
// Security "restricted" profile.
func TestClusterAcceptsRenderedObjects(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := cluster.Namespace(t)
	p := bundled(t)
	p.Namespace = ns
	res := mustRender(t, p, render.Options{APIVersions: monitoringAPIs})

	cfg := cluster.RESTConfig()
	warn := &warnings{}
	cfg.WarningHandler = warn
	applier, err := kube.NewApplier(cfg)
	if err != nil {
		t.Fatal(err)
	}
	kinds := map[string]int{}
	for _, o := range res.Objects {
		// The namespace is applied for real, as its labels turn on the
		// restricted profile the pods below are checked against, and so are
		// the service accounts those pods need.
		dryRun := o.GetKind() != "Namespace" && o.GetKind() != "ServiceAccount"
		if _, err := applier.Apply(ctx, o.Unstructured, kube.ApplyOptions{DryRun: dryRun}); err != nil {
			t.Errorf("%s/%s %s: %v", o.Service, o.GetKind(), o.GetName(), err)
		}
		kinds[o.GetKind()]++
	}
	if len(warn.list) > 0 {
		t.Errorf("the API server warned:\n%s", strings.Join(warn.list, "\n"))
	}
	for _, kind := range []string{"Deployment", "VirtualService", "DestinationRule", "AuthorizationPolicy", "ServiceMonitor", "PrometheusRule", "VerticalPodAutoscaler"} {
		if kinds[kind] == 0 {
			t.Errorf("nothing of kind %s was applied", kind)
		}
	}

	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cs.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if err != nil || got.Labels["pod-security.kubernetes.io/enforce"] != "restricted" {
		t.Fatalf("namespace %s does not enforce restricted: %v %v", ns, got.Labels, err)
	}
	// Admission enforces the profile on pods, so create (dry run) each
	// Deployment's pod, and check that a pod without the security context
	// is refused: the check has teeth.
	for _, o := range res.Objects {
		if o.GetKind() != "Deployment" {
			continue
		}
		pod := podFromDeployment(t, o.Unstructured, ns)
		if _, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
			t.Errorf("%s's pod is refused: %v", o.GetName(), err)
		}
		pod.Spec.SecurityContext = nil
		pod.Spec.Containers[0].SecurityContext = nil
		_, err := cs.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), `violates PodSecurity "restricted:latest"`) {
			t.Errorf("a pod without a security context was not refused by Pod Security: %v", err)
		}
	}
}

func podFromDeployment(t *testing.T, d *unstructured.Unstructured, ns string) *corev1.Pod {
	t.Helper()
	tmpl, _, err := unstructured.NestedMap(d.Object, "spec", "template")
	if err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, pod); err != nil {
		t.Fatal(err)
	}
	pod.Name = d.GetName() + "-dry-run"
	pod.Namespace = ns
	return pod
}

// The variants the golden project does not show are accepted too: an image
// by digest, and scraping with Istio's certificates (the ServiceMonitor's
// TLS settings, the /metrics rule limited to Prometheus's namespace).
func TestClusterAcceptsDigestAndMTLSScrape(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := bundled(t)
	p.Namespace = cluster.Namespace(t)
	p.Prometheus.Scrape = config.ScrapeMTLS
	digest := "sha256:" + strings.Repeat("ab", 32)
	res := mustRender(t, p, render.Options{
		Services: []string{"order"}, APIVersions: monitoringAPIs,
		Images: map[string]imageref.Ref{"order": {Tag: "v2", Digest: digest}},
	})
	applier, err := kube.NewApplier(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, o := range res.Objects {
		if o.Service != "order" {
			continue
		}
		if _, err := applier.Apply(ctx, o.Unstructured, kube.ApplyOptions{DryRun: true}); err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		seen[o.GetKind()] = true
	}
	for _, kind := range []string{"Deployment", "ServiceMonitor", "AuthorizationPolicy"} {
		if !seen[kind] {
			t.Errorf("no %s rendered", kind)
		}
	}
	if seen["PeerAuthentication"] {
		t.Error("a port-level PeerAuthentication was rendered for mTLS scrapes")
	}
}

// The canary's traffic routes fit Istio's VirtualService schema as the API
// server applies it (every field declared, of its type), and what the server
// would store reads back as the traffic rendered: A/B matches of every
// kind, at the edge with and without the pin header, and mirroring with and
// without a weight. Istio's semantic rules (lower-case header names, RE2,
// percentages up to 100) are istiod's webhook's, which this control plane
// does not run: config and render check those themselves.
func TestClusterAcceptsCanaryTraffic(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	beta := &config.Match{
		Headers: map[string]config.StringMatch{
			"x-beta":     {Exact: "1"},
			"x-user":     {Prefix: "test-"},
			"user-agent": {Regex: ".*(Firefox|Chrome)/[0-9]+.*"},
		},
		Cookie: "ab.test=v1.2+(beta)",
	}
	tests := []struct {
		name        string
		allowHeader bool
		traffic     routes.Traffic
	}{
		{"match", false, routes.Traffic{Match: beta}},
		{"match, pin header allowed at the edge", true, routes.Traffic{Match: beta}},
		{"cookie alone", false, routes.Traffic{Match: &config.Match{Cookie: "canary=always"}}},
		{"mirror", false, routes.Traffic{Mirror: 20}},
		{"mirror with a weight", false, routes.Traffic{Weight: 25, Mirror: 100}},
		{"weight, match and mirror", true, routes.Traffic{Weight: 10, Mirror: 50, Match: beta}},
	}
	applier, err := kube.NewApplier(cluster.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	ns := cluster.Namespace(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := bundled(t)
			p.Namespace = ns
			p.Gateway.AllowCanaryHeader = tt.allowHeader
			for _, service := range []string{"order", "payment"} { // exposed, and mesh only
				res := mustRender(t, p, render.Options{Services: []string{service}, Traffic: map[string]routes.Traffic{service: tt.traffic}})
				var applied int
				for _, o := range res.Istio(service) {
					if o.GetKind() != "VirtualService" {
						continue
					}
					applied++
					got, err := applier.Apply(ctx, o.Unstructured, kube.ApplyOptions{DryRun: true})
					if err != nil {
						t.Fatalf("%s: %v", service, err)
					}
					// What the server would store reads back as what was
					// rendered.
					if back := routes.ReadTraffic(got); !reflect.DeepEqual(back, tt.traffic) {
						t.Errorf("%s: the stored VirtualService reads as %+v, want %+v", service, back, tt.traffic)
					}
				}
				if applied != 1 {
					t.Fatalf("%s: %d VirtualServices rendered", service, applied)
				}
			}
		})
	}
}
