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
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// The stable's subset, the canary's name suffix and the header that pins a
// request to the canary.
const (
	StableSubset = "stable"
	// CanarySubset is the subset of the stable's Service that routes
	// written before the canary had a Service of its own send it.
	CanarySubset = "canary"
	CanarySuffix = "-canary"
	CanaryHeader = "x-canary"

	// ManagedBy marks the objects msctl applies itself (outside Helm), so
	// status and destroy can find exactly those.
	ManagedByLabel = "app.kubernetes.io/managed-by"
	ManagedBy      = "msctl"

	gatewayNamespace = "istio-system"
	// meshGateway is Istio's name for the sidecars of the mesh, as opposed
	// to an ingress gateway.
	meshGateway      = "mesh"
	gatewayPrincipal = "cluster.local/ns/" + gatewayNamespace + "/sa/istio-ingressgateway-service-account"
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

// serviceIstioObjects are a service's traffic rules: the policies of the
// stable's Service (with its stable subset) and of the canary's, the
// routes with the canary's
// traffic t, who may call it, and the admin port's exception to STRICT mTLS
// for a plaintext scrape.
func serviceIstioObjects(p *config.Project, s *config.Service, t Traffic) ([]Object, error) {
	stable := destinationRule(p, s, s.Name, serviceHost(p, s))
	stable.Spec.Subsets = []*networkingapi.Subset{{Name: StableSubset, Labels: map[string]string{"version": StableSubset}}}
	canary := destinationRule(p, s, s.Name+CanarySuffix, CanaryHost(p, s))

	// The order they are applied in: the canary's rule before the route
	// to it, the stable's (whose canary subset routes written by an earlier
	// msctl may still use) after, so an upgrade has no moment of a route
	// to nothing.
	objs := []any{canary, virtualService(p, s, t), stable, authorizationPolicy(p, s)}
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

// destinationRule is the traffic policy of the requests for host: mutual
// TLS, connection limits and outlier detection, the same for both tracks.
func destinationRule(p *config.Project, s *config.Service, name, host string) *networking.DestinationRule {
	return &networking.DestinationRule{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "DestinationRule"},
		ObjectMeta: meta(p, name, s.Name),
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
		},
	}
}

// exposed says whether the gateway sends requests to s.
func exposed(p *config.Project, s *config.Service) bool {
	return len(s.Routes) > 0 && len(p.Gateway.Hosts) > 0
}

// virtualService routes s's traffic: inside the mesh and, when exposed,
// from the gateway on the service's own path prefixes, split between the
// stable subset and the canary's Service by t's weight. While a canary runs, routes
// before the split send it the requests that carry CanaryHeader (the pin)
// and those t's match selects, in that order; and the split routes mirror
// t's share of their requests to it.
func virtualService(p *config.Project, s *config.Service, t Traffic) *networking.VirtualService {
	host := serviceHost(p, s)
	gatewayName := GatewayName(p)
	canary := func() *networkingapi.Destination { return &networkingapi.Destination{Host: CanaryHost(p, s)} }
	weighted := func(route *networkingapi.HTTPRoute) *networkingapi.HTTPRoute {
		route.Route = []*networkingapi.HTTPRouteDestination{
			{Destination: &networkingapi.Destination{Host: host, Subset: StableSubset}, Weight: int32(100 - t.Weight)},
			{Destination: canary(), Weight: int32(t.Weight)},
		}
		if t.Mirror > 0 {
			// One destination: mirror with mirrorPercentage. mirrors is
			// the list form for several, and a route takes one or the other.
			route.Mirror = canary()
			route.MirrorPercentage = &networkingapi.Percent{Value: float64(t.Mirror)}
		}
		return route
	}
	// The service's timeout bounds the whole request, retries included.
	// There is no perTryTimeout: Istio's default is the route's timeout,
	// so no try is cut short of it.
	timeout := func() *durationpb.Duration { return durationpb.New(time.Duration(s.Timeout)) }
	retries := func() *networkingapi.HTTPRetry {
		return &networkingapi.HTTPRetry{
			Attempts: 2,
			// Only failures where the request never reached the service,
			// so a call it handled, idempotent or not, is never sent
			// again. (gRPC's "unavailable" is an answer from the service;
			// the kit retries its idempotent methods itself.)
			RetryOn: "connect-failure,refused-stream,reset-before-request",
		}
	}
	onRoutes := func() []*networkingapi.HTTPMatchRequest {
		var match []*networkingapi.HTTPMatchRequest
		for _, prefix := range s.Routes {
			match = append(match, &networkingapi.HTTPMatchRequest{
				Gateways: []string{gatewayName},
				Uri:      &networkingapi.StringMatch{MatchType: &networkingapi.StringMatch_Prefix{Prefix: prefix}},
			})
		}
		return match
	}

	vs := &networking.VirtualService{
		TypeMeta:   metav1.TypeMeta{APIVersion: "networking.istio.io/v1", Kind: "VirtualService"},
		ObjectMeta: meta(p, s.Name, s.Name),
		Spec:       networkingapi.VirtualService{Hosts: []string{host}, Gateways: []string{meshGateway}},
	}
	spec := &vs.Spec
	if exposed(p, s) {
		spec.Hosts = append(spec.Hosts, p.Gateway.Hosts...)
		spec.Gateways = append(spec.Gateways, gatewayName)
	}
	// Only the mesh chooses the canary: unless the project allows it, a
	// client outside cannot pin a request, nor the calls the service makes
	// with it, so the gateway's routes remove the header.
	stripAtGateway := func(route *networkingapi.HTTPRoute) *networkingapi.HTTPRoute {
		if exposed(p, s) && !p.Gateway.AllowCanaryHeader {
			route.Headers = &networkingapi.Headers{Request: &networkingapi.Headers_HeaderOperations{Remove: []string{CanaryHeader}}}
		}
		return route
	}
	if t.Running() {
		// The pin is scoped to this service's requests: every exposed
		// service's routes share the public hosts, so a pin without a path
		// would send any path there to this canary.
		match := []*networkingapi.HTTPMatchRequest{{Gateways: []string{meshGateway}}}
		if exposed(p, s) && p.Gateway.AllowCanaryHeader {
			match = append(match, onRoutes()...)
		}
		for _, m := range match {
			m.Headers = map[string]*networkingapi.StringMatch{
				CanaryHeader: {MatchType: &networkingapi.StringMatch_Exact{Exact: "true"}},
			}
		}
		spec.Http = append(spec.Http, &networkingapi.HTTPRoute{
			Name:    PinRoute,
			Match:   match,
			Route:   []*networkingapi.HTTPRouteDestination{{Destination: canary(), Weight: 100}},
			Timeout: timeout(),
			Retries: retries(),
		})
	}
	if t.Match != nil {
		// The match applies where the split does: inside the mesh, and at
		// the gateway on the service's own routes. Every header condition
		// must hold.
		match := []*networkingapi.HTTPMatchRequest{{Gateways: []string{meshGateway}}}
		if exposed(p, s) {
			match = append(match, onRoutes()...)
		}
		for _, m := range match {
			m.Headers = matchHeaders(t.Match)
		}
		spec.Http = append(spec.Http, stripAtGateway(&networkingapi.HTTPRoute{
			Name:    MatchRoute,
			Match:   match,
			Route:   []*networkingapi.HTTPRouteDestination{{Destination: canary(), Weight: 100}},
			Timeout: timeout(),
			Retries: retries(),
		}))
	}
	if exposed(p, s) {
		spec.Http = append(spec.Http, stripAtGateway(weighted(&networkingapi.HTTPRoute{
			Name: "gateway", Match: onRoutes(), Timeout: timeout(), Retries: retries(),
		})))
	}
	spec.Http = append(spec.Http, weighted(&networkingapi.HTTPRoute{
		Name:    "mesh",
		Match:   []*networkingapi.HTTPMatchRequest{{Gateways: []string{meshGateway}}},
		Timeout: timeout(),
		Retries: retries(),
	}))
	return vs
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

func serviceHost(p *config.Project, s *config.Service) string {
	return fmt.Sprintf("%s.%s.svc.cluster.local", s.Name, p.Namespace)
}

// CanaryHost is the cluster-local host of a service's canary Service,
// which the chart's canary release creates. The routes send the canary's
// share to it, not to a subset of the stable's Service, so that a request
// no canary pod received (none ready) is still the canary's: the caller's
// sidecar records it under that Service's name.
func CanaryHost(p *config.Project, s *config.Service) string {
	return fmt.Sprintf("%s%s.%s.svc.cluster.local", s.Name, CanarySuffix, p.Namespace)
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
