package config

import (
	"fmt"
	"slices"
)

// Setting is a project key that a global flag or an MSCTL_* variable may
// override. Precedence is flag, then variable, then file, then default.
type Setting struct {
	// Key is the key's path in the project file.
	Key string
	// Env is the environment variable that overrides it.
	Env string
	// Flag is the global flag that overrides it, if any.
	Flag string
	set  func(p *Project, v string) error
}

// Settings returns the overridable keys.
func Settings() []Setting { return slices.Clone(settings) }

// settings is the table behind Settings; callers get a copy, so nobody can
// change what the next caller sees.
var settings = []Setting{
	{Key: "name", Env: "MSCTL_NAME", set: func(p *Project, v string) error { p.Name = v; return nil }},
	{Key: "namespace", Env: "MSCTL_NAMESPACE", Flag: "namespace", set: func(p *Project, v string) error { p.Namespace = v; return nil }},
	{Key: "registry", Env: "MSCTL_REGISTRY", set: func(p *Project, v string) error { p.Registry = v; return nil }},
	{Key: "kube.kubeconfig", Env: "MSCTL_KUBECONFIG", Flag: "kubeconfig", set: func(p *Project, v string) error { p.Kube.Kubeconfig = v; return nil }},
	{Key: "kube.context", Env: "MSCTL_CONTEXT", Flag: "context", set: func(p *Project, v string) error { p.Kube.Context = v; return nil }},
	{Key: "prometheus.address", Env: "MSCTL_PROMETHEUS_ADDRESS", set: func(p *Project, v string) error { p.Prometheus.Address = v; return nil }},
	{Key: "gateway.credentialName", Env: "MSCTL_GATEWAY_CREDENTIAL_NAME", set: func(p *Project, v string) error { p.Gateway.CredentialName = v; return nil }},
	{Key: "canary.interval", Env: "MSCTL_CANARY_INTERVAL", set: func(p *Project, v string) error {
		d, err := ParseDuration(v)
		p.Canary.Interval = d
		return err
	}},
}

// Override is a value for a Setting from outside the file.
type Override struct {
	Key   string
	Value string
	// Origin says where the value came from, e.g. "flag --namespace" or
	// "env MSCTL_NAMESPACE".
	Origin string
}

func lookupSetting(key string) (Setting, error) {
	for _, s := range settings {
		if s.Key == key {
			return s, nil
		}
	}
	return Setting{}, fmt.Errorf("config: %q is not an overridable setting", key)
}
