package render

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/msctl/msctl/internal/config"
	"google.golang.org/protobuf/types/known/durationpb"
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
)

// Subsets and the header that pins a request to the canary.
const (
	StableSubset = "stable"
	CanarySubset = "canary"
	CanaryHeader = "x-canary"

	// ManagedBy marks the objects msctl applies itself (outside Helm), so
	// status and destroy can find exactly those.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "msctl"

	gatewayNamespace = "istio-system"
	gatewayPrincipal = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
	tracingSampling  = 10.0
)

// GatewayName is the name of the project's Istio Gateway.
func GatewayName(p *config.Project) string { return p.Name + "-gateway" }

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
		ObjectMeta: meta(p, GatewayName(p), ""),
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

// serviceIstioObjects are a service's traffic rules: subsets with their
// connection limits and outlier detection, the weighted routes, and who may
// call it.
func serviceIstioObjects(p *config.Project, s *config.Service, canaryWeight int) ([]Object, error) {
	host := fmt.Sprintf("%s.%s.svc.cluster.local", s.Name, p.Namespace)
	dr := &networking.DestinationRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "DestinationRule"},
		ObjectMeta: meta(p, s.Name, s.Name),
		Spec: networkingapi.DestinationRule{
			Host: host,
			TrafficPolicy: &networkingapi.TrafficPolicy{
				Tls: &networkingapi.ClientTLSSettings{Mode: networkingapi.ClientTLSSettings_ISTIO_MUTUAL},
				ConnectionPool: &networkingapi.ConnectionPoolSettings{
					Tcp: &networkingapi.ConnectionPoolSettings_TCPSettings{
						MaxConnections: 100,
						ConnectTimeout: durationpb.New(3 * time.Second),
					},
					Http: &networkingapi.ConnectionPoolSettings_HTTPSettings{
						Http1MaxPendingRequests: 100,
						Http2MaxRequests:        1000,
						MaxRetries:              3,
					},
				},
				// Ejects a pod that keeps failing: the mesh's circuit breaker.
				OutlierDetection: &networkingapi.OutlierDetection{
					Consecutive_5XxErrors: wrapperspb.UInt32(5),
					Interval:              durationpb.New(10 * time.Second),
					BaseEjectionTime:      durationpb.New(30 * time.Second),
					MaxEjectionPercent:    50,
				},
			},
			Subsets: []*networkingapi.Subset{
				{Name: StableSubset, Labels: map[string]string{"version": StableSubset}},
				{Name: CanarySubset, Labels: map[string]string{"version": CanarySubset}},
			},
		},
	}

	weighted := func() []*networkingapi.HTTPRouteDestination {
		return []*networkingapi.HTTPRouteDestination{
			{Destination: &networkingapi.Destination{Host: host, Subset: StableSubset}, Weight: int32(100 - canaryWeight)},
			{Destination: &networkingapi.Destination{Host: host, Subset: CanarySubset}, Weight: int32(canaryWeight)},
		}
	}
	retries := func() *networkingapi.HTTPRetry {
		return &networkingapi.HTTPRetry{
			Attempts:      2,
			PerTryTimeout: durationpb.New(2 * time.Second),
			// Only failures where the request never reached the service,
			// so a non-idempotent call is never sent twice.
			RetryOn: "connect-failure,refused-stream,reset-before-request,unavailable",
		}
	}
	gatewayName := GatewayName(p)
	hosts := []string{host}
	gateways := []string{"mesh"}
	exposed := len(s.Routes) > 0 && len(p.Gateway.Hosts) > 0
	if exposed {
		hosts = append(hosts, p.Gateway.Hosts...)
		gateways = append(gateways, gatewayName)
	}
	var routes []*networkingapi.HTTPRoute
	if canaryWeight > 0 {
		routes = append(routes, &networkingapi.HTTPRoute{
			Name: "pin-canary",
			Match: []*networkingapi.HTTPMatchRequest{{
				Headers: map[string]*networkingapi.StringMatch{
					CanaryHeader: {MatchType: &networkingapi.StringMatch_Exact{Exact: "true"}},
				},
			}},
			Route:   []*networkingapi.HTTPRouteDestination{{Destination: &networkingapi.Destination{Host: host, Subset: CanarySubset}, Weight: 100}},
			Timeout: durationpb.New(10 * time.Second),
			Retries: retries(),
		})
	}
	if exposed {
		var match []*networkingapi.HTTPMatchRequest
		for _, prefix := range s.Routes {
			match = append(match, &networkingapi.HTTPMatchRequest{
				Gateways: []string{gatewayName},
				Uri:      &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Prefix{Prefix: prefix}},
			})
		}
		routes = append(routes, &networkingapi.HTTPRoute{
			Name: "gateway", Match: match, Route: weighted(), Timeout: durationpb.New(10 * time.Second), Retries: retries(),
		})
	}
	routes = append(routes, &networkingapi.HTTPRoute{
		Name:    "mesh",
		Match:   []*networkingapi.HTTPMatchRequest{{Gateways: []string{"mesh"}}},
		Route:   weighted(),
		Timeout: durationpb.New(10 * time.Second),
		Retries: retries(),
	})
	vs := &networking.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "VirtualService"},
		ObjectMeta: meta(p, s.Name, s.Name),
		Spec:       networkingapi.VirtualService{Hosts: hosts, Gateways: gateways, Http: routes},
	}

	var principals []string
	if exposed {
		principals = append(principals, gatewayPrincipal)
	}
	for _, caller := range Callers(p, s.Name) {
		principals = append(principals, fmt.Sprintf("cluster.local/ns/%s/sa/%s", p.Namespace, caller))
	}
	rules := []*securityapi.Rule{{
		// Prometheus scrapes metrics; the admin port serves nothing else
		// of value to a caller.
		To: []*securityapi.Rule_To{{Operation: &securityapi.Operation{
			Ports: []string{fmt.Sprint(s.Ports.Admin)}, Methods: []string{"GET"}, Paths: []string{"/metrics"},
		}}},
	}}
	if len(principals) > 0 {
		rules = append(rules, &securityapi.Rule{
			From: []*securityapi.Rule_From{{Source: &securityapi.Source{Principals: principals}}},
			To: []*securityapi.Rule_To{{Operation: &securityapi.Operation{
				Ports: []string{fmt.Sprint(s.Ports.HTTP), fmt.Sprint(s.Ports.GRPC)},
			}}},
		})
	}
	authz := &security.AuthorizationPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "security.istio.io/v1", Kind: "AuthorizationPolicy"},
		ObjectMeta: meta(p, s.Name, s.Name),
		Spec: securityapi.AuthorizationPolicy{
			Selector: &typeapi.WorkloadSelector{MatchLabels: map[string]string{"app": s.Name}},
			Action:   securityapi.AuthorizationPolicy_ALLOW,
			Rules:    rules,
		},
	}

	var out []Object
	for _, o := range []any{dr, vs, authz} {
		u, err := toUnstructured(o)
		if err != nil {
			return nil, err
		}
		out = append(out, Object{Service: s.Name, Source: SourceIstio, Unstructured: u})
	}
	return out, nil
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
