package testcluster

// Pinned versions of everything the control plane is built or loaded from.
// The Kubernetes server matches the client libraries in go.mod (k8s.io/client-go
// v0.37.2 talks to v1.37.2) and the CRDs come from the module versions that
// match the Istio, Prometheus Operator and VPA APIs the manifests target; a
// test checks both against go.mod so a dependency bump cannot drift silently.
const (
	// KubernetesVersion is the k8s.io/kubernetes release the API server,
	// controller manager and scheduler are built from.
	KubernetesVersion = "v1.37.2"
	// StagingVersion is the k8s.io/<staging> module version matching KubernetesVersion.
	StagingVersion = "v0.37.2"
	// EtcdVersion is the go.etcd.io/etcd/server/v3 version.
	EtcdVersion = "v3.7.3"
	// KwokVersion is the sigs.k8s.io/kwok version that simulates nodes and pods.
	KwokVersion = "v0.8.0"
	// IstioAPIVersion is the istio.io/api version that istio.io/client-go
	// v1.31.4 requires; its CRDs are installed.
	IstioAPIVersion = "v1.31.3-0.20261021173654-6bc70d5e00c2"
	// PrometheusOperatorVersion is the prometheus-operator module whose CRDs
	// (ServiceMonitor, PrometheusRule, ...) are installed.
	PrometheusOperatorVersion = "v0.85.0"
	// VPAVersion is the k8s.io/autoscaler/vertical-pod-autoscaler module
	// whose VerticalPodAutoscaler CRDs are installed.
	VPAVersion = "v1.8.1"
)

const (
	modKubernetes         = "k8s.io/kubernetes"
	modEtcd               = "go.etcd.io/etcd/server/v3"
	modKwok               = "sigs.k8s.io/kwok"
	modIstioAPI           = "istio.io/api"
	modPrometheusOperator = "github.com/prometheus-operator/prometheus-operator"
	modVPA                = "k8s.io/autoscaler/vertical-pod-autoscaler"
)

// buildRecipe changes whenever the way the binaries are built or the assets
// are laid out changes, so an old cache entry is not mistaken for a new one.
const buildRecipe = "r1"
