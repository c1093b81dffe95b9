package config

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// validate checks the decoded, defaulted project and records every problem.
func validate(p *Project, ps *problems) {
	if p.APIVersion != APIVersion {
		ps.at("apiVersion", "unsupported apiVersion %q (want %q)", p.APIVersion, APIVersion)
	}
	if p.Kind != Kind {
		ps.at("kind", "unsupported kind %q (want %q)", p.Kind, Kind)
	}
	dnsLabel(ps, "name", p.Name)
	dnsLabel(ps, "namespace", p.Namespace)
	if p.Registry == "" || strings.Contains(p.Registry, "://") || strings.ContainsAny(p.Registry, " \t") {
		ps.at("registry", "%q is not an image registry such as ghcr.io/acme or localhost:5000", p.Registry)
	}
	if u, err := url.Parse(p.Prometheus.Address); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		ps.at("prometheus.address", "%q is not an http(s) URL", p.Prometheus.Address)
	}
	switch p.Prometheus.Scrape {
	case ScrapePlaintext:
	case ScrapeMTLS:
		// The /metrics rule admits Prometheus's namespace, so it must be known.
		if p.Prometheus.Namespace() == "" {
			ps.at("prometheus.scrape", "mtls needs prometheus.address to be an in-cluster service such as http://prometheus.NAMESPACE.svc:9090, to admit that namespace; got %q", p.Prometheus.Address)
		}
	default:
		ps.at("prometheus.scrape", "%q is not plaintext or mtls", p.Prometheus.Scrape)
	}
	for i, h := range p.Gateway.Hosts {
		if errs := validation.IsDNS1123Subdomain(strings.TrimPrefix(h, "*.")); len(errs) > 0 {
			ps.at(fmt.Sprintf("gateway.hosts[%d]", i), "%q is not a DNS name", h)
		}
	}
	if p.Gateway.CredentialName != "" {
		if errs := validation.IsDNS1123Subdomain(p.Gateway.CredentialName); len(errs) > 0 {
			ps.at("gateway.credentialName", "%q is not a valid Secret name", p.Gateway.CredentialName)
		}
	}
	if p.Auth.Issuer != "" || p.Auth.JWKSURI != "" {
		if p.Auth.Issuer == "" {
			ps.at("auth.issuer", "is required when auth.jwksUri is set")
		}
		if u, err := url.Parse(p.Auth.JWKSURI); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			ps.at("auth.jwksUri", "%q is not an http(s) URL", p.Auth.JWKSURI)
		}
		if len(p.Auth.Audiences) == 0 {
			// The mesh would take a token for any audience and each service
			// refuse one not meant for it: name them so both agree.
			ps.at("auth", "audiences are required with an issuer: the services accept only tokens meant for them")
		}
	}
	validateCanaries(p, ps)
	validateServices(p.Services, ps)
	validateKeys(p, ps)
}

func validateServices(services []Service, ps *problems) {
	if len(services) == 0 {
		ps.at("services", "the project declares no services")
		return
	}
	first := map[string]int{}
	routes := map[string]string{}
	for i, s := range services {
		at := func(key string) string { return fmt.Sprintf("services[%d].%s", i, key) }
		if dnsLabel(ps, at("name"), s.Name) {
			if strings.HasSuffix(s.Name, "-canary") {
				// Its objects would be another service's canary's.
				ps.at(at("name"), "%q ends in -canary, the suffix of a canary's objects: choose another name", s.Name)
			} else if j, dup := first[s.Name]; dup {
				ps.at(at("name"), "duplicate service %q (first declared as services[%d])", s.Name, j)
			} else {
				first[s.Name] = i
			}
		}
		ports := map[int]string{}
		for _, port := range []struct {
			key string
			n   int
		}{{"http", s.Ports.HTTP}, {"grpc", s.Ports.GRPC}, {"admin", s.Ports.Admin}} {
			path := at("ports." + port.key)
			if port.n < 1 || port.n > 65535 {
				ps.at(path, "port %d is out of range 1-65535", port.n)
				continue
			}
			if other, dup := ports[port.n]; dup {
				ps.at(path, "port %d is already the %s port", port.n, other)
			}
			ports[port.n] = port.key
		}
		if s.Replicas < 0 || s.Replicas > 1000 {
			ps.at(at("replicas"), "%d is outside 0-1000", s.Replicas)
		}
		quantity(ps, at("resources.requests.cpu"), s.Resources.Requests.CPU)
		quantity(ps, at("resources.requests.memory"), s.Resources.Requests.Memory)
		quantity(ps, at("resources.limits.cpu"), s.Resources.Limits.CPU)
		quantity(ps, at("resources.limits.memory"), s.Resources.Limits.Memory)
		if s.Secret != "" {
			if errs := validation.IsDNS1123Subdomain(s.Secret); len(errs) > 0 {
				ps.at(at("secret"), "%q is not a valid Secret name", s.Secret)
			}
		}
		for j, r := range s.Routes {
			path := fmt.Sprintf("services[%d].routes[%d]", i, j)
			if !strings.HasPrefix(r, "/") || strings.ContainsAny(r, " \t?#") {
				ps.at(path, "%q is not a URL path prefix such as /api/v1/users", r)
			} else if owner, taken := routes[r]; taken {
				ps.at(path, "route %q is already service %q's", r, owner)
			} else {
				routes[r] = s.Name
			}
		}
		for _, k := range sortedKeys(s.Env) {
			if !envName.MatchString(k) {
				ps.at(at("env."+k), "%q is not a valid environment variable name", k)
			}
		}
		validateTimeout(ps, i, &s)
	}
	for i, s := range services {
		for j, callee := range s.Calls {
			path := fmt.Sprintf("services[%d].calls[%d]", i, j)
			switch {
			case callee == s.Name:
				ps.at(path, "service %q calls itself", s.Name)
			case !slices.ContainsFunc(services, func(o Service) bool { return o.Name == callee }):
				ps.at(path, "service %q calls %q, which is not declared in services", s.Name, callee)
			}
		}
	}
	if cycle := findCycle(services); cycle != nil {
		ps.at(fmt.Sprintf("services[%d].calls", indexOf(services, cycle[0])), "services call each other in a cycle: %s", strings.Join(cycle, " -> "))
	}
}

// validateTimeout checks a service's route timeout, and that it outlasts
// the saga the service runs, if it declares one.
func validateTimeout(ps *problems, i int, s *Service) {
	path := fmt.Sprintf("services[%d].timeout", i)
	if s.Timeout <= 0 {
		ps.at(path, "must be positive, got %s", s.Timeout)
		return
	}
	raw, ok := s.Env["SAGA_TIMEOUT"]
	if !ok {
		return
	}
	if badSaga, msg := SagaTimeoutProblem(time.Duration(s.Timeout), raw); badSaga {
		ps.at(fmt.Sprintf("services[%d].env.SAGA_TIMEOUT", i), "%s", msg)
	} else if msg != "" {
		ps.at(path, "%s", msg)
	}
}

// SagaTimeoutProblem says what is wrong with a service's route timeout
// against the SAGA_TIMEOUT its environment gives (raw), or "" when
// nothing is; badSaga is true when raw itself is at fault. The route must
// outlast the saga, or it would answer 504 while the saga may still
// complete. Render applies the same rule to values from -f and --set.
func SagaTimeoutProblem(route time.Duration, raw string) (badSaga bool, msg string) {
	saga, err := time.ParseDuration(raw)
	if err != nil {
		return true, fmt.Sprintf("%q is not a duration such as 15s", raw)
	}
	if route <= saga {
		return false, fmt.Sprintf("%s does not outlast SAGA_TIMEOUT (%s): the route would cut the saga short and answer 504 while the saga may still complete; set it above %s", Duration(route), saga, saga)
	}
	return false, ""
}

func dnsLabel(ps *problems, path, v string) bool {
	if v == "" {
		ps.at(path, "is required")
		return false
	}
	if errs := validation.IsDNS1123Label(v); len(errs) > 0 {
		ps.at(path, "%q is not a valid name: lower-case letters, digits and '-', at most 63 characters", v)
		return false
	}
	return true
}

func quantity(ps *problems, path, v string) {
	if v == "" {
		return
	}
	if _, err := resource.ParseQuantity(v); err != nil {
		ps.at(path, "%q is not a quantity such as 100m or 128Mi", v)
	}
}

func indexOf(services []Service, name string) int {
	return slices.IndexFunc(services, func(s Service) bool { return s.Name == name })
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
