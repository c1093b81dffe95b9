package render

import (
	"encoding/json"
	"fmt"

	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/routes"
	"google.golang.org/protobuf/types/known/wrapperspb"
	networkingapi "istio.io/api/networking/v1"
	securityapi "istio.io/api/security/v1"
	telemetryapi "istio.io/api/telemetry/v1"
	typeapi "istio.io/api/type/v1beta1"
	networking "istio.io/client-go/pkg/apis/networking/v1"
	security "istio.io/client-go/pkg/apis/security/v1"
	telemetry "istio.io/client-go/pkg/apis/telemetry/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

const (
	// ManagedBy marks the objects msctl applies itself (outside Helm), so
	// status and destroy can find exactly those.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "msctl"

	gatewayNamespace = "istio-system"
	gatewayPrincipal = "cluster.local/ns/" + gatewayNamespace + "/sa/istio-ingressgateway-service-account"
	tracingSampling  = 10.0
)

func meta(p *config.Project, name, service string) metav1.ObjectMeta {
	labels := map[string]string{
		ManagedByLabel:              ManagedBy,
		"app.kubernetes.io/part-of": p.Name,
	}
	if service != "" {
		labels["app"] = service
	}
	return metav1.ObjectMeta{Name: name, Namespace: p.Namespace, Labels: labels}
}

// ProjectObjects are the objects the whole project shares: the namespace,
// the mesh policies, the gateway and the dashboard.
func ProjectObjects(p *config.Project) ([]Object, error) {
	ns := &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: p.Namespace, Labels: map[string]string{
			ManagedByLabel:                               ManagedBy,
			"istio-injection":                            "enabled",
			"pod-security.kubernetes.io/enforce":         "restricted",
			"pod-security.kubernetes.io/enforce-version": "latest",
		}},
	}
	objs := []any{ns}
	peer := &security.PeerAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "PeerAuthentication"},
		ObjectMeta: meta(p, "default", ""),
		Spec: securityapi.PeerAuthentication{
			Mtls: &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT},
		},
	}
	objs = append(objs, peer)
	if p.Auth.Issuer != "" {
		objs = append(objs, &security.RequestAuthentication{
			TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "RequestAuthentication"},
			ObjectMeta: meta(p, p.Name+"-jwt", ""),
			Spec: securityapi.RequestAuthentication{
				JwtRules: []*securityapi.JWTRule{{
					Issuer:               p.Auth.Issuer,
					JwksUri:              p.Auth.JWKSURI,
					Audiences:            p.Auth.Audiences,
					ForwardOriginalToken: true,
				}},
			},
		})
	}
	objs = append(objs, &telemetry.Telemetry{
		TypeMeta:   metav1.TypeMeta{APIVersion: "telemetry.istio.io/v1", Kind: "Telemetry"},
		ObjectMeta: meta(p, p.Name, ""),
		Spec: telemetryapi.Telemetry{
			Metrics: []*telemetryapi.Metrics{{Providers: []*telemetryapi.ProviderRef{{Name: "prometheus"}}}},
			Tracing: []*telemetryapi.Tracing{{
				Providers:                []*telemetryapi.ProviderRef{{Name: "otel"}},
				RandomSamplingPercentage: wrapperspb.Double(tracingSampling),
			}},
		},
	})
	if len(p.Gateway.Hosts) > 0 {
		objs = append(objs, gateway(p))
	}
	dashboard, err := dashboardConfigMap(p)
	if err != nil {
		return nil, err
	}
	objs = append(objs, dashboard)
	out := make([]Object, 0, len(objs))
	for _, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return nil, err
		}
		source := SourceIstio
		switch o.(type) {
		case *corev1.Namespace:
			source = SourceProject
		case *corev1.ConfigMap:
			source = SourceMonitoring
		}
		out = append(out, Object{Source: source, Unstructured: u})
	}
	return out, nil
}

func gateway(p *config.Project) *networking.Gateway {
	return &networking.Gateway{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "Gateway"},
		ObjectMeta: meta(p, routes.GatewayName(p), ""),
		Spec: networkingapi.Gateway{
			Selector: map[string]string{"istio": "ingressgateway"},
			Servers: []*networkingapi.Server{
				{
					Port:  &networkingapi.Port{Number: 443, Name: "https", Protocol: "HTTPS"},
					Hosts: p.Gateway.Hosts,
					Tls: &networkingapi.ServerTLSSettings{
						Mode:           networkingapi.ServerTLSSettings_SIMPLE,
						CredentialName: p.Gateway.CredentialName,
					},
				},
				{
					Port:  &networkingapi.Port{Number: 80, Name: "http", Protocol: "HTTP"},
					Hosts: p.Gateway.Hosts,
					Tls:   &networkingapi.ServerTLSSettings{HttpsRedirect: true},
				},
			},
		},
	}
}

// ServiceIstioKinds are the kinds of the Istio objects render may produce
// for a service, whatever the settings: deploy removes those of them a
// render no longer produces (say, the scrape exception once Prometheus
// scrapes over mTLS).
func ServiceIstioKinds() []schema.GroupVersionKind {
	return []schema.GroupVersionKind{
		{Group: "networking.istio.io", Version: "v1", Kind: "DestinationRule"},
		{Group: "networking.istio.io", Version: "v1", Kind: "VirtualService"},
		{Group: "security.istio.io", Version: "v1", Kind: "AuthorizationPolicy"},
		{Group: "security.istio.io", Version: "v1", Kind: "PeerAuthentication"},
	}
}

// serviceIstioObjects are a service's traffic rules: its route under the
// canary's traffic t in Istio's objects (see routes), who may call it, and
// the admin port's exception to STRICT mTLS for a plaintext scrape.
func serviceIstioObjects(p *config.Project, s *config.Service, t routes.Traffic) ([]Object, error) {
	r, err := routes.For(p, s.Name, t)
	if err != nil {
		return nil, err
	}
	rules := r.DestinationRules()
	for _, dr := range rules {
		dr.ObjectMeta = meta(p, dr.Name, s.Name)
	}
	vs := r.VirtualService()
	vs.ObjectMeta = meta(p, vs.Name, s.Name)
	// routes' order: the canary's rule, the route, the stable's rule.
	objs := []any{rules[0], vs, rules[1], authorizationPolicy(p, s)}
	if pa := metricsPeerAuthentication(p, s); pa != nil {
		objs = append(objs, pa)
	}

	var out []Object
	for _, o := range objs {
		u, err := toUnstructured(o)
		if err != nil {
			return nil, err
		}
		out = append(out, Object{Service: s.Name, Source: SourceIstio, Unstructured: u})
	}
	return out, nil
}

// exposed says whether the gateway sends requests to s.
func exposed(p *config.Project, s *config.Service) bool {
	return len(s.Routes) > 0 && len(p.Gateway.Hosts) > 0
}

// authorizationPolicy says who may call s: Prometheus for metrics, the
// gateway when s is exposed, and the services that declare they call s.
func authorizationPolicy(p *config.Project, s *config.Service) *security.AuthorizationPolicy {
	apiPorts := func() []*securityapi.Rule_To {
		return []*securityapi.Rule_To{{Operation: &securityapi.Operation{
			Ports: []string{fmt.Sprint(s.Ports.HTTP), fmt.Sprint(s.Ports.GRPC)},
		}}}
	}
	metrics := &securityapi.Rule{
		// The admin port serves nothing else of value to a caller.
		To: []*securityapi.Rule_To{{Operation: &securityapi.Operation{
			Ports: []string{fmt.Sprint(s.Ports.Admin)}, Methods: []string{"GET"}, Paths: []string{"/metrics"},
		}}},
	}
	// With mTLS scrapes only Prometheus's namespace may read metrics. With
	// plaintext scrapes the rule names no source: a plaintext request has
	// no peer identity, and source.namespaces only matches mTLS peers, so it
	// would refuse Prometheus itself; the chart's NetworkPolicy is what
	// admits only Prometheus's pods, in its namespace, to the admin port.
	if p.Prometheus.Scrape == config.ScrapeMTLS {
		metrics.From = []*securityapi.Rule_From{{Source: &securityapi.Source{Namespaces: []string{p.Prometheus.Namespace()}}}}
	}
	rules := []*securityapi.Rule{metrics}
	if exposed(p, s) {
		from := &securityapi.Source{Principals: []string{gatewayPrincipal}}
		if p.Auth.Issuer != "" {
			// RequestAuthentication refuses a bad token but lets a request
			// without one through, with no request principal. The fields of
			// one source must all match, so a request from the gateway is
			// allowed only with a token the mesh verified; callers inside
			// the mesh are known by their mTLS identity and need none.
			from.RequestPrincipals = []string{"*"}
		}
		rules = append(rules, &securityapi.Rule{From: []*securityapi.Rule_From{{Source: from}}, To: apiPorts()})
	}
	var callers []string
	for _, caller := range Callers(p, s.Name) {
		callers = append(callers, fmt.Sprintf("cluster.local/ns/%s/sa/%s", p.Namespace, caller))
	}
	if len(callers) > 0 {
		rules = append(rules, &securityapi.Rule{
			From: []*securityapi.Rule_From{{Source: &securityapi.Source{Principals: callers}}},
			To:   apiPorts(),
		})
	}
	return &security.AuthorizationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy"},
		ObjectMeta: meta(p, s.Name, s.Name),
		Spec: securityapi.AuthorizationPolicy{
			Selector: &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": s.Name}},
			Action:   securityapi.AuthorizationPolicy_ALLOW,
			Rules:    rules,
		},
	}
}

// metricsPeerAuthentication lets a Prometheus without a sidecar scrape the
// admin port in plaintext, the rest of s staying STRICT; nil when
// Prometheus scrapes with mTLS. Port-level modes name the container port.
func metricsPeerAuthentication(p *config.Project, s *config.Service) *security.PeerAuthentication {
	if p.Prometheus.Scrape == config.ScrapeMTLS {
		return nil
	}
	return &security.PeerAuthentication{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "PeerAuthentication"},
		ObjectMeta: meta(p, s.Name, s.Name),
		Spec: securityapi.PeerAuthentication{
			Selector: &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": s.Name}},
			Mtls:     &securityapi.PeerAuthentication_MutualTLS{Mode: securityapi.PeerAuthentication_MutualTLS_STRICT},
			PortLevelMtls: map[uint32]*securityapi.PeerAuthentication_MutualTLS{
				uint32(s.Ports.Admin): {Mode: securityapi.PeerAuthentication_MutualTLS_PERMISSIVE},
			},
		},
	}
}

// toUnstructured serialises a typed object through its JSON form, which
// for Istio types is the protobuf JSON mapping the API server stores.
func toUnstructured(obj any) (*unstructured.Unstructured, error) {
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	// UnmarshalJSON, unlike json.Unmarshal, keeps integers as int64.
	if err := u.UnmarshalJSON(b); err != nil {
		return nil, err
	}
	// Typed objects carry an empty creationTimestamp; drop it.
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	delete(u.Object, "status")
	if spec, ok := u.Object["spec"].(map[string]any); ok && len(spec) == 0 {
		delete(u.Object, "spec")
	}
	return u, nil
}
