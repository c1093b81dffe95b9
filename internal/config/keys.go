package config

import (
	"fmt"
	"regexp"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// KeysMountPath is where a service's key Secret is mounted, read-only; the
// *_FILE variables of Keys.Files point into it.
const KeysMountPath = "/etc/msctl/keys"

// Keys is an existing Secret that holds a service's credentials as files:
// the JWT verification keys and API keys it accepts and the API key it
// calls other services with. Each field but Secret names a key of the
// Secret (a file in the mount); empty means the Secret holds no such file.
type Keys struct {
	Secret string `json:"secret"`
	// APIKeys is a JSON file of accepted API keys, stored as hashes
	// (AUTH_API_KEYS_FILE).
	APIKeys string `json:"apiKeys,omitempty"`
	// JWKS is a JSON Web Key Set (AUTH_JWKS_FILE).
	JWKS string `json:"jwks,omitempty"`
	// PublicKey is a PEM file of JWT public keys (AUTH_JWT_PUBLIC_KEY_FILE).
	PublicKey string `json:"publicKey,omitempty"`
	// DownstreamAPIKey is the API key the service sends on its calls to
	// the services it calls (DOWNSTREAM_API_KEY_FILE).
	DownstreamAPIKey string `json:"downstreamApiKey,omitempty"`
}

// Files maps each variable the services read to its key in the Secret,
// which is its file name under KeysMountPath, for the keys the Secret holds.
func (k *Keys) Files() map[string]string {
	out := map[string]string{}
	for _, f := range k.fields() {
		if *f.file != "" {
			out[f.env] = *f.file
		}
	}
	return out
}

type keyField struct {
	key, env string
	file     *string
}

func (k *Keys) fields() []keyField {
	return []keyField{
		{"apiKeys", "AUTH_API_KEYS_FILE", &k.APIKeys},
		{"jwks", "AUTH_JWKS_FILE", &k.JWKS},
		{"publicKey", "AUTH_JWT_PUBLIC_KEY_FILE", &k.PublicKey},
		{"downstreamApiKey", "DOWNSTREAM_API_KEY_FILE", &k.DownstreamAPIKey},
	}
}

// KeysFor returns the key Secret of service s: its own keys, else the
// project's, else nil.
func (p *Project) KeysFor(s *Service) *Keys {
	if s.Keys != nil {
		return s.Keys
	}
	if p.Keys != nil {
		return p.Keys
	}
	return nil
}

// secretKey is what Kubernetes accepts as a key of a Secret.
var secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// validateKeys checks the project's keys at path "keys" and each service's
// at services[i].keys, against what each service's env already says.
func validateKeys(p *Project, ps *problems) {
	checkKeys(ps, "keys", p.Keys)
	for i := range p.Services {
		s := &p.Services[i]
		at := fmt.Sprintf("services[%d].keys", i)
		checkKeys(ps, at, s.Keys)
		k := p.KeysFor(s)
		if k == nil {
			continue
		}
		if s.Keys == nil {
			at = "keys"
		}
		if (k.JWKS != "" || k.PublicKey != "") && p.Auth.Issuer == "" && s.Env["AUTH_JWT_ISSUER"] == "" {
			ps.at(at, "JWT keys need the issuer their tokens name: set auth.issuer (or AUTH_JWT_ISSUER in services[%d].env)", i)
		}
		for _, env := range sortedKeys(k.Files()) {
			if _, set := s.Env[env]; set {
				ps.at(fmt.Sprintf("services[%d].env.%s", i, env), "is set by the key Secret %q (mounted at %s); remove it from env", k.Secret, KeysMountPath)
			}
		}
	}
}

func checkKeys(ps *problems, path string, k *Keys) {
	if k == nil {
		return
	}
	if errs := validation.IsDNS1123Subdomain(k.Secret); len(errs) > 0 {
		ps.at(path+".secret", "%q is not a valid Secret name", k.Secret)
	}
	n := 0
	for _, f := range k.fields() {
		if *f.file == "" {
			continue
		}
		n++
		if !secretKey.MatchString(*f.file) || strings.HasPrefix(*f.file, "..") || *f.file == "." {
			ps.at(path+"."+f.key, "%q is not a key of a Secret (letters, digits, '-', '_' and '.')", *f.file)
		}
	}
	if n == 0 {
		ps.at(path, "names no file of the Secret: set apiKeys, jwks, publicKey or downstreamApiKey")
	}
}

// UnsafeEnvReason says why a variable must not reach a deployed service,
// or "" when it may: the one rule for the project file and for values
// given with -f and --set.
func UnsafeEnvReason(name string) string {
	switch {
	case name == "AUTH_DEV_MODE":
		return "dev mode signs tokens with a key made at start-up and logs a 24-hour admin token"
	case name == "ADMIN_PPROF":
		return "pprof on the admin port exposes heap contents and costs CPU on demand"
	case strings.HasPrefix(name, "FAULT_"):
		return "fault injection fails or delays real requests"
	}
	return ""
}

// UnsafeEnv reports every service variable that is for local runs and
// tests only (AUTH_DEV_MODE, ADMIN_PPROF, FAULT_*), each with its file and
// line, as an *Error (bad input); nil when there is none. Commands that
// render or deploy call it unless told to allow them.
func (l *Loaded) UnsafeEnv() error {
	ps := &problems{source: l.File, positions: l.positions}
	for i, s := range l.Project.Services {
		for _, k := range sortedKeys(s.Env) {
			if why := UnsafeEnvReason(k); why != "" {
				ps.at(fmt.Sprintf("services[%d].env.%s", i, k), "is unsafe in a deployed service (%s); remove it or pass --allow-unsafe-env", why)
			}
		}
	}
	return ps.err()
}
