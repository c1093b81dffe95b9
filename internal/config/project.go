// Package config owns the msctl project file (msctl.yaml): its versioned
// schema, strict decoding with file positions, defaults and validation, and
// the table of settings that flags and MSCTL_* variables may override.
//
// It never reads flags or the environment itself and never writes anything
// except through Write: the command line resolves overrides and hands the
// values in, so the package stays usable as a library.
package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// APIVersion and Kind identify the project file's schema.
const (
	APIVersion = "msctl.dev/v1alpha1"
	Kind       = "Project"
)

// Project is the whole of msctl.yaml. Field names in json tags are the keys
// of the file, of `config view -o json|yaml` and of error messages.
type Project struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Name       string     `json:"name"`
	Namespace  string     `json:"namespace"`
	Registry   string     `json:"registry"`
	Kube       Kube       `json:"kube"`
	Prometheus Prometheus `json:"prometheus"`
	Gateway    Gateway    `json:"gateway"`
	Auth       Auth       `json:"auth"`
	Canary     Canary     `json:"canary"`
	// Keys is the Secret of credentials every service gets, unless it
	// names its own.
	Keys     *Keys     `json:"keys,omitempty"`
	Services []Service `json:"services"`
}

// Kube says which cluster to talk to; empty fields mean client-go's usual
// rules (KUBECONFIG, ~/.kube/config, its current context).
type Kube struct {
	Kubeconfig string `json:"kubeconfig"`
	Context    string `json:"context"`
}

// Prometheus is where canary analysis sends its PromQL queries, and how
// Prometheus reaches the services' metrics.
type Prometheus struct {
	Address string `json:"address"`
	// Scrape is how Prometheus scrapes the admin ports under STRICT mTLS:
	// ScrapePlaintext or ScrapeMTLS.
	Scrape string `json:"scrape"`
}

// The ways Prometheus may scrape the services' admin ports.
const (
	// ScrapePlaintext is a Prometheus without a sidecar: the admin port
	// accepts plaintext, and the network policy limits it to Prometheus.
	ScrapePlaintext = "plaintext"
	// ScrapeMTLS is a Prometheus that scrapes with Istio certificates (its
	// own sidecar's): the admin port stays STRICT, and only Prometheus's
	// namespace may read /metrics.
	ScrapeMTLS = "mtls"
)

// Namespace is the namespace of an in-cluster Prometheus, read from an
// address such as http://prometheus.istio-system.svc:9090; "" when the
// address names no in-cluster service.
func (p Prometheus) Namespace() string {
	u, err := url.Parse(p.Address)
	if err != nil {
		return ""
	}
	parts := strings.Split(u.Hostname(), ".")
	if len(parts) >= 3 && parts[2] == "svc" {
		return parts[1]
	}
	return ""
}

// Gateway is the Istio ingress gateway the services are exposed through.
type Gateway struct {
	Hosts []string `json:"hosts"`
	// CredentialName is the TLS secret the gateway serves HTTPS with.
	CredentialName string `json:"credentialName"`
	// AllowCanaryHeader lets clients outside the mesh pin their requests to
	// a running canary with the x-canary header; otherwise the gateway
	// removes the header.
	AllowCanaryHeader bool `json:"allowCanaryHeader"`
}

// Auth is the JWT issuer the mesh checks tokens against before a request
// reaches a service; empty means the mesh checks no tokens.
type Auth struct {
	Issuer    string   `json:"issuer"`
	JWKSURI   string   `json:"jwksUri"`
	Audiences []string `json:"audiences,omitempty"`
}

// Service is one deployable service of the project.
type Service struct {
	Name string `json:"name"`
	// Path is the service's source directory, relative to the project file.
	Path string `json:"path"`
	// Image overrides the image name; the default is <registry>/<name>.
	Image     string            `json:"image,omitempty"`
	Ports     Ports             `json:"ports"`
	Replicas  int               `json:"replicas"`
	Resources Resources         `json:"resources"`
	Env       map[string]string `json:"env,omitempty"`
	// Secret names an existing Secret whose keys become environment
	// variables; secret values never go in the project file.
	Secret string `json:"secret,omitempty"`
	// Routes are the URL path prefixes the gateway sends to this service;
	// none means the service is reachable only inside the mesh.
	Routes []string `json:"routes,omitempty"`
	// Timeout bounds a request on the service's mesh routes; it must
	// outlast the longest call the service serves.
	Timeout Duration `json:"timeout"`
	// Calls names the services this one sends requests to: deploy order,
	// network policies and authorization policies follow from it.
	Calls []string `json:"calls,omitempty"`
	// Keys is the service's own key Secret, in place of the project's.
	Keys *Keys `json:"keys,omitempty"`
	// Canary is the service's own canary settings; see Project.CanaryFor.
	Canary *CanaryOverride `json:"canary,omitempty"`
}

// Ports are a service's three listeners.
type Ports struct {
	HTTP  int `json:"http"`
	GRPC  int `json:"grpc"`
	Admin int `json:"admin"`
}

// Resources are a container's requests and limits.
type Resources struct {
	Requests ResourceList `json:"requests"`
	Limits   ResourceList `json:"limits"`
}

// ResourceList holds Kubernetes quantities such as "100m" or "128Mi".
type ResourceList struct {
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
}

// Service returns the named service, or nil.
func (p *Project) Service(name string) *Service {
	for i := range p.Services {
		if p.Services[i].Name == name {
			return &p.Services[i]
		}
	}
	return nil
}

// ServiceNames lists the services in file order.
func (p *Project) ServiceNames() []string {
	names := make([]string, len(p.Services))
	for i, s := range p.Services {
		names[i] = s.Name
	}
	return names
}

// Duration is a time.Duration written as "30s" or "1m30s" in files and output.
type Duration time.Duration

// String formats the duration like time.Duration does.
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalJSON writes the duration as a string such as "1m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON reads a duration string such as "90s".
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("expected a duration such as \"30s\"")
	}
	v, err := ParseDuration(s)
	*d = v
	return err
}

// ParseDuration parses "30s", "5m", "1h30m".
func ParseDuration(s string) (Duration, error) {
	v, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("expected a duration such as \"30s\" or \"5m\", got %q", s)
	}
	return Duration(v), nil
}
