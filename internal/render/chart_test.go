package render

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/imageref"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var digest = "sha256:" + strings.Repeat("0f", 32)

// The image a rendering gives a service, and the Deployment that pulls it.
func TestImages(t *testing.T) {
	tests := []struct {
		name    string
		extra   string
		opts    Options
		service string
		want    imageref.Ref
		pulls   string
	}{
		{"default tag", "", Options{}, "user", imageref.Ref{Repository: "localhost:5000/user", Tag: "latest"}, "localhost:5000/user:latest"},
		{"tag for every service", "", Options{ImageTag: "v3"}, "user", imageref.Ref{Repository: "localhost:5000/user", Tag: "v3"}, "localhost:5000/user:v3"},
		{"the project's registry", "registry: ghcr.io/acme\n", Options{ImageTag: "v3"}, "user", imageref.Ref{Repository: "ghcr.io/acme/user", Tag: "v3"}, "ghcr.io/acme/user:v3"},
		{"a digest wins over the tag", "", Options{ImageTag: "v3", Images: map[string]imageref.Ref{"user": {Tag: "v4", Digest: digest}}}, "user",
			imageref.Ref{Repository: "localhost:5000/user", Tag: "v4", Digest: digest}, "localhost:5000/user@" + digest},
		{"a whole reference", "", Options{Images: map[string]imageref.Ref{"user": {Repository: "registry:5000/other", Digest: digest}}}, "user",
			imageref.Ref{Repository: "registry:5000/other", Digest: digest}, "registry:5000/other@" + digest},
		{"another service keeps the tag", "", Options{ImageTag: "v3", Images: map[string]imageref.Ref{"user": {Digest: digest}}}, "order",
			imageref.Ref{Repository: "localhost:5000/order", Tag: "v3"}, "localhost:5000/order:v3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(t, tt.extra)
			s := p.Service(tt.service)
			if got := tt.opts.Image(p, s); got != tt.want {
				t.Errorf("Options.Image = %+v, want %+v", got, tt.want)
			}
			opts := tt.opts
			opts.Services = []string{tt.service}
			res, err := Render(p, opts)
			if err != nil {
				t.Fatal(err)
			}
			dep := find(res, tt.service, "Deployment")
			containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
			if got := containers[0].(map[string]any)["image"]; got != tt.pulls {
				t.Errorf("the Deployment pulls %v, want %s", got, tt.pulls)
			}
			// deploy reads the image back from the release's values.
			values := serviceValues(p, s, tt.opts.Image(p, s), nil)
			if got := ImageFromValues(values); got != tt.want {
				t.Errorf("ImageFromValues = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestImageFromValues(t *testing.T) {
	tests := []struct {
		name   string
		values map[string]any
		want   imageref.Ref
	}{
		{"tag", map[string]any{"image": map[string]any{"repository": "r/user", "tag": "v1"}}, imageref.Ref{Repository: "r/user", Tag: "v1"}},
		{"digest", map[string]any{"image": map[string]any{"repository": "r/user", "tag": "v1", "digest": digest}}, imageref.Ref{Repository: "r/user", Tag: "v1", Digest: digest}},
		{"no image", map[string]any{"name": "user"}, imageref.Ref{}},
		{"not a mapping", map[string]any{"image": "r/user:v1"}, imageref.Ref{}},
	}
	for _, tt := range tests {
		if got := ImageFromValues(tt.values); got != tt.want {
			t.Errorf("%s: got %+v, want %+v", tt.name, got, tt.want)
		}
	}
}

func TestBadImages(t *testing.T) {
	p := project(t, "")
	tests := []struct {
		name   string
		images map[string]imageref.Ref
		want   string
	}{
		{"unknown service", map[string]imageref.Ref{"billing": {Tag: "v1"}}, `image for unknown service "billing"`},
		{"bad digest", map[string]imageref.Ref{"user": {Digest: "sha256:abc"}}, `user: image reference "localhost:5000/user@sha256:abc": digest "sha256:abc" is not sha256: and 64 lower-case hex digits`},
		{"neither tag nor digest", map[string]imageref.Ref{"user": {Repository: "r/user"}}, `user: image reference "r/user" names neither a tag nor a digest`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Render(p, Options{Images: tt.images})
			if errkind.Of(err) != errkind.BadInput || err.Error() != tt.want {
				t.Errorf("got %v, want the bad-input error %q", err, tt.want)
			}
		})
	}
}

// The service's ConfigMap carries the JWT issuer and audiences the mesh
// checks, so the service accepts the same tokens; the file's env and --set
// win.
func TestServiceEnv(t *testing.T) {
	const auth = "auth:\n  issuer: https://auth.example.com\n  jwksUri: https://auth.example.com/jwks.json\n"
	tests := []struct {
		name     string
		extra    string
		env      map[string]string
		overlays []map[string]any
		want     map[string]any
	}{
		{"no auth", "", nil, nil, map[string]any{}},
		{"audiences, comma-separated", auth + "  audiences: [shop, shop-admin]\n", map[string]string{"LOG_LEVEL": "info"}, nil,
			map[string]any{"AUTH_JWT_ISSUER": "https://auth.example.com", "AUTH_JWT_AUDIENCE": "shop,shop-admin", "LOG_LEVEL": "info"}},
		{"the file's env wins", auth + "  audiences: [shop]\n", map[string]string{"AUTH_JWT_AUDIENCE": "user"}, nil,
			map[string]any{"AUTH_JWT_ISSUER": "https://auth.example.com", "AUTH_JWT_AUDIENCE": "user"}},
		{"--set wins", auth + "  audiences: [shop]\n", nil, []map[string]any{{"env": map[string]any{"AUTH_JWT_ISSUER": "https://other.example.com"}}},
			map[string]any{"AUTH_JWT_ISSUER": "https://other.example.com", "AUTH_JWT_AUDIENCE": "shop"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := project(t, tt.extra)
			s := p.Service("user")
			s.Env = tt.env
			values := ServiceValues(p, s, "v1", tt.overlays)
			if got := values["env"].(map[string]any); !maps.Equal(got, tt.want) {
				t.Errorf("env = %v, want %v", got, tt.want)
			}
		})
	}
}

// With mTLS scrapes the ServiceMonitor scrapes with Istio's certificates;
// with plaintext it scrapes plain HTTP.
func TestServiceMonitorScheme(t *testing.T) {
	for _, tt := range []struct {
		extra, scheme string
	}{
		{"", ""},
		{"prometheus:\n  scrape: mtls\n", "https"},
	} {
		res := mustRender(t, project(t, tt.extra), Options{Services: []string{"user"}, APIVersions: monitoringAPIs})
		sm := find(res, "user", "ServiceMonitor")
		endpoints, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		ep := endpoints[0].(map[string]any)
		if got, _ := ep["scheme"].(string); got != tt.scheme {
			t.Errorf("%q: scheme %q, want %q", tt.extra, got, tt.scheme)
		}
		if _, tls := ep["tlsConfig"]; tls != (tt.scheme == "https") {
			t.Errorf("%q: tlsConfig present = %v", tt.extra, tls)
		}
	}
}

// Each track has a Service: the stable's selects both tracks' pods and
// names the port the ServiceMonitor scrapes; the canary's selects only the
// canary's pods, is what the routes send the canary's share to, and serves
// every port under names the ServiceMonitor does not scrape.
func TestEachTrackHasAService(t *testing.T) {
	for track, want := range map[string]struct {
		name, selector string
		metrics        bool
	}{
		"stable": {"user", "map[app:user]", true},
		"canary": {"user-canary", "map[app:user version:canary]", false},
	} {
		res := mustRender(t, bundled(t), Options{Services: []string{"user"}, Values: []map[string]any{{"track": track}}})
		var svc *unstructured.Unstructured
		for _, o := range res.Objects {
			if o.GetKind() == "Service" {
				svc = o.Unstructured
			}
		}
		if svc == nil {
			t.Fatalf("%s: no Service", track)
		}
		selector, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
		ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
		metrics := false
		for _, port := range ports {
			metrics = metrics || port.(map[string]any)["name"] == "http-metrics"
		}
		if len(ports) != 3 {
			t.Errorf("%s: ports %v, want the three", track, ports)
		}
		if svc.GetName() != want.name || fmt.Sprint(selector) != want.selector || metrics != want.metrics {
			t.Errorf("%s: Service %s selecting %v, metrics port %v; want %s selecting %s, metrics port %v",
				track, svc.GetName(), selector, metrics, want.name, want.selector, want.metrics)
		}
	}
}
