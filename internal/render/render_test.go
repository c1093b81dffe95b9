package render

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/routes"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// monitoringAPIs are the optional APIs of the chart's conditional objects.
var monitoringAPIs = []string{
	"monitoring.coreos.com/v1/ServiceMonitor",
	"monitoring.coreos.com/v1/PrometheusRule",
	"autoscaling.k8s.io/v1/VerticalPodAutoscaler",
}

func bundled(t testing.TB) *config.Project {
	t.Helper()
	l, err := config.Load("../../msctl.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	return l.Project
}

func mustRender(t *testing.T, p *config.Project, opts Options) *Result {
	t.Helper()
	res, err := Render(p, opts)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestGolden(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"shop", Options{APIVersions: monitoringAPIs}},
		{"shop-canary", Options{Services: []string{"order", "user"}, CanaryWeights: map[string]int{"order": 25}, ImageTag: "v1.2.3"}},
		// An A/B step: the pin, then the match route (header and cookie, in
		// the mesh and on order's gateway route), then the split at 0.
		{"shop-canary-match", Options{Services: []string{"order"}, ImageTag: "v1.2.3", Traffic: map[string]routes.Traffic{"order": {
			Match: &config.Match{Headers: map[string]config.StringMatch{"x-beta": {Exact: "1"}}, Cookie: "canary=always"},
		}}}},
		// A mirror step: the split at 0 mirrors a fifth of it to the canary.
		{"shop-canary-mirror", Options{Services: []string{"order"}, ImageTag: "v1.2.3", Traffic: map[string]routes.Traffic{"order": {Mirror: 20}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := mustRender(t, bundled(t), tt.opts).YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", tt.name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test ./internal/render -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("rendered output differs from %s; run go test ./internal/render -update and review the diff", golden)
			}
		})
	}
}

func TestDeterministic(t *testing.T) {
	p := bundled(t)
	first, _ := mustRender(t, p, Options{APIVersions: monitoringAPIs}).YAML()
	for range 5 {
		again, _ := mustRender(t, p, Options{APIVersions: monitoringAPIs}).YAML()
		if !bytes.Equal(first, again) {
			t.Fatal("two renderings of the same input differ")
		}
	}
}

func TestEveryObjectIsThere(t *testing.T) {
	res := mustRender(t, bundled(t), Options{APIVersions: monitoringAPIs})
	perService := []string{"ServiceAccount", "ConfigMap", "Service", "Deployment", "HorizontalPodAutoscaler",
		"PodDisruptionBudget", "NetworkPolicy", "VerticalPodAutoscaler", "ServiceMonitor", "PrometheusRule",
		"DestinationRule", "VirtualService", "AuthorizationPolicy"}
	for _, svc := range []string{"user", "inventory", "payment", "order"} {
		for _, kind := range perService {
			if find(res, svc, kind) == nil {
				t.Errorf("%s has no %s", svc, kind)
			}
		}
	}
	for _, kind := range []string{"Namespace", "Gateway", "PeerAuthentication", "RequestAuthentication", "Telemetry", "ConfigMap"} {
		if find(res, "", kind) == nil {
			t.Errorf("no project-wide %s", kind)
		}
	}
}

func TestOptionalAPIsNeedTheCluster(t *testing.T) {
	res := mustRender(t, bundled(t), Options{})
	for _, kind := range []string{"VerticalPodAutoscaler", "ServiceMonitor", "PrometheusRule"} {
		if o := find(res, "user", kind); o != nil {
			t.Errorf("%s rendered although the cluster does not serve its API", kind)
		}
	}
}

func TestCanaryWeights(t *testing.T) {
	p := bundled(t)
	tests := []struct {
		weight     int
		wantStable int64
		wantPin    bool
	}{
		{0, 100, false},
		{10, 90, true},
		{100, 0, true},
	}
	for _, tt := range tests {
		res := mustRender(t, p, Options{Services: []string{"order"}, CanaryWeights: map[string]int{"order": tt.weight}})
		vs := find(res, "order", "VirtualService")
		http, _, _ := unstructured.NestedSlice(vs.Object, "spec", "http")
		var names []string
		for _, r := range http {
			route := r.(map[string]any)
			names = append(names, route["name"].(string))
			if route["name"] == routes.PinRoute {
				continue
			}
			dests := route["route"].([]any)
			stable := dests[0].(map[string]any)
			if w, _, _ := unstructured.NestedInt64(stable, "weight"); w != tt.wantStable {
				t.Errorf("weight %d: route %s sends %d to stable, want %d", tt.weight, route["name"], w, tt.wantStable)
			}
		}
		if got := slices.Contains(names, routes.PinRoute); got != tt.wantPin {
			t.Errorf("weight %d: pin-canary route present = %v, want %v", tt.weight, got, tt.wantPin)
		}
	}
}

// Only the gateway (for exposed services) and declared callers may call a
// service, and the network policy agrees.
func TestCallersAreTheOnlyClients(t *testing.T) {
	res := mustRender(t, bundled(t), Options{})
	tests := []struct {
		service    string
		principals []string
	}{
		{"payment", []string{"cluster.local/ns/shop/sa/order"}},
		{"user", []string{gatewayPrincipal, "cluster.local/ns/shop/sa/order"}},
		{"order", []string{gatewayPrincipal}},
	}
	for _, tt := range tests {
		ap := find(res, tt.service, "AuthorizationPolicy")
		rules, _, _ := unstructured.NestedSlice(ap.Object, "spec", "rules")
		var got []string
		for _, r := range rules {
			from, _, _ := unstructured.NestedSlice(r.(map[string]any), "from")
			for _, f := range from {
				p, _, _ := unstructured.NestedStringSlice(f.(map[string]any), "source", "principals")
				got = append(got, p...)
			}
		}
		if !slices.Equal(got, tt.principals) {
			t.Errorf("%s principals = %v, want %v", tt.service, got, tt.principals)
		}
	}
	np := find(res, "payment", "NetworkPolicy")
	y, _ := yaml.Marshal(np.Object)
	if !strings.Contains(string(y), "- order\n") {
		t.Errorf("payment's NetworkPolicy does not admit order:\n%s", y)
	}
}

func TestBadInput(t *testing.T) {
	p := bundled(t)
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"unknown service", Options{Services: []string{"billing"}}, `unknown service "billing" (the project has: user, inventory, payment, order)`},
		{"weight above 100", Options{CanaryWeights: map[string]int{"order": 101}}, "canary weight 101 for order is outside 0-100"},
		{"negative weight", Options{CanaryWeights: map[string]int{"order": -1}}, "canary weight -1 for order is outside 0-100"},
		{"weight for unknown service", Options{CanaryWeights: map[string]int{"billing": 5}}, `canary weight for unknown service "billing"`},
		{"traffic for unknown service", Options{Traffic: map[string]routes.Traffic{"billing": {Mirror: 5}}}, `canary traffic for unknown service "billing"`},
		{"traffic given twice", Options{CanaryWeights: map[string]int{"order": 5}, Traffic: map[string]routes.Traffic{"order": {Weight: 5}}}, "canary traffic for order is given twice, as a weight and as traffic"},
		{"traffic weight above 100", Options{Traffic: map[string]routes.Traffic{"order": {Weight: 110}}}, "canary weight 110 for order is outside 0-100"},
		{"mirror above 100", Options{Traffic: map[string]routes.Traffic{"order": {Mirror: 101}}}, "canary mirror 101 for order is outside 0-100"},
		{"negative mirror", Options{Traffic: map[string]routes.Traffic{"order": {Mirror: -1}}}, "canary mirror -1 for order is outside 0-100"},
		{"empty match", Options{Traffic: map[string]routes.Traffic{"order": {Match: &config.Match{}}}}, "canary match for order: needs headers or a cookie: a match of nothing would send every request to the canary"},
		{"match Istio refuses", Options{Traffic: map[string]routes.Traffic{"order": {Match: &config.Match{Headers: map[string]config.StringMatch{"X-Beta": {Exact: "1"}}}}}}, `canary match for order: headers.X-Beta: header names are matched in lower case: write "x-beta"`},
		{"value outside the schema", Options{Services: []string{"user"}, Values: []map[string]any{{"replicaz": 3}}}, "user: chart values rejected: at '': additional properties 'replicaz' not allowed"},
		{"value of the wrong type", Options{Services: []string{"user"}, Values: []map[string]any{{"ports": map[string]any{"http": 70000}}}}, "user: chart values rejected: at '/ports/http': maximum: got 70,000, want 65,535"},
		{"saga outlasting the route by --set", Options{Services: []string{"order"}, Values: []map[string]any{{"env": map[string]any{"SAGA_TIMEOUT": "30s"}}}},
			"order: env.SAGA_TIMEOUT from -f or --set against services[3].timeout: 20s does not outlast SAGA_TIMEOUT (30s): the route would cut the saga short and answer 504 while the saga may still complete; set it above 30s"},
		{"saga timeout no duration", Options{Values: []map[string]any{{"env": map[string]any{"SAGA_TIMEOUT": 30}}}},
			`user: env.SAGA_TIMEOUT from -f or --set: "30" is not a duration such as 15s`},
		{"bad kube version", Options{KubeVersion: "one"}, `--kube-version "one": could not parse "one" as version`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(p, tt.opts)
			if errkind.Of(err) != errkind.BadInput {
				t.Fatalf("got %v, want a bad-input error", err)
			}
			if err.Error() != tt.want {
				t.Errorf("got  %q\nwant %q", err, tt.want)
			}
		})
	}
}

// The alert rules must load in Prometheus: promtool checks them as rendered.
func TestPromtoolAcceptsAlertRules(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatalf("promtool not found (Debian package prometheus; make deps installs it): %v", err)
	}
	res := mustRender(t, bundled(t), Options{APIVersions: monitoringAPIs})
	dir := t.TempDir()
	var files []string
	for _, o := range res.Objects {
		if o.GetKind() != "PrometheusRule" {
			continue
		}
		spec, _, _ := unstructured.NestedMap(o.Object, "spec")
		y, err := yaml.Marshal(spec)
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(dir, o.Service+".rules.yaml")
		if err := os.WriteFile(f, y, 0o644); err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	if len(files) != 4 {
		t.Fatalf("%d PrometheusRules rendered, want 4", len(files))
	}
	out, err := exec.Command(promtool, append([]string{"check", "rules"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "SUCCESS: 8 rules found") {
		t.Errorf("promtool found a different number of rules:\n%s", out)
	}
}

func find(res *Result, service, kind string) *Object {
	for i, o := range res.Objects {
		if o.Service == service && o.GetKind() == kind {
			return &res.Objects[i]
		}
	}
	return nil
}
