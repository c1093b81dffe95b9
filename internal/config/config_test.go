package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const minimal = `apiVersion: msctl.dev/v1alpha1
kind: Project
name: shop
services:
  - name: user
  - name: order
    calls: [user]
`

func TestLoadBundledProject(t *testing.T) {
	l, err := Load("../../msctl.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Project
	if got := strings.Join(p.ServiceNames(), ","); got != "user,inventory,payment,order" {
		t.Errorf("services = %s", got)
	}
	if o := p.Service("order"); o == nil || strings.Join(o.Calls, ",") != "user,inventory,payment" {
		t.Errorf("order calls = %v", o)
	}
	if p.Service("nope") != nil {
		t.Error("Service(nope) found something")
	}
	// order's saga runs up to 15s (SAGA_TIMEOUT's default); its route must
	// outlast it.
	if o := p.Service("order"); o.Timeout.String() != "20s" {
		t.Errorf("order timeout = %s, want 20s", o.Timeout)
	}
}

func TestDefaults(t *testing.T) {
	l, err := Parse("msctl.yaml", []byte(minimal), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := l.Project
	u := p.Service("user")
	checks := []struct {
		name      string
		got, want any
	}{
		{"namespace defaults to the name", p.Namespace, "shop"},
		{"registry", p.Registry, DefaultRegistry},
		{"prometheus", p.Prometheus.Address, DefaultPrometheus},
		{"credential", p.Gateway.CredentialName, "shop-tls"},
		{"interval", p.Canary.Interval, DefaultCanaryInterval},
		{"steps", len(p.Canary.Steps), len(DefaultSteps())},
		{"path", u.Path, "services/user"},
		{"grpc port", u.Ports.GRPC, DefaultGRPCPort},
		{"replicas", u.Replicas, DefaultReplicas},
		{"memory limit", u.Resources.Limits.Memory, "256Mi"},
		{"route timeout", u.Timeout, DefaultRouteTimeout},
		{"scrape", p.Prometheus.Scrape, ScrapePlaintext},
		{"canary header at the edge", p.Gateway.AllowCanaryHeader, false},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s: got %v, want %v", c.name, c.got, c.want)
		}
	}
}

func TestExplicitZeroIsKept(t *testing.T) {
	l, err := Parse("msctl.yaml", []byte(minimal+"    replicas: 0\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := l.Project.Service("order").Replicas; r != 0 {
		t.Fatalf("replicas = %d, want the 0 the file says", r)
	}
}

func TestOverridesAndOrigins(t *testing.T) {
	src := strings.Replace(minimal, "name: shop\n", "name: shop\nnamespace: from-file\nregistry: ghcr.io/acme\n", 1)
	l, err := Parse("msctl.yaml", []byte(src), []Override{
		{Key: "namespace", Value: "from-flag", Origin: "flag --namespace"},
		{Key: "canary.interval", Value: "30s", Origin: "env MSCTL_CANARY_INTERVAL"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if l.Project.Namespace != "from-flag" || l.Project.Canary.Interval.String() != "30s" {
		t.Fatalf("overrides not applied: %+v", l.Project)
	}
	origins := map[string]string{
		"namespace":              "flag --namespace",
		"canary.interval":        "env MSCTL_CANARY_INTERVAL",
		"registry":               "msctl.yaml:5",
		"services[1].calls[0]":   "msctl.yaml:9",
		"services[0].ports.http": "default",
	}
	for key, want := range origins {
		if got := l.Origin(key); got != want {
			t.Errorf("Origin(%s) = %q, want %q", key, got, want)
		}
	}
	var found bool
	for _, e := range l.Entries() {
		if e.Key == "services[1].calls[0]" {
			found = e.Value == "user" && e.Origin == "msctl.yaml:9"
		}
	}
	if !found {
		t.Error("Entries() lacks services[1].calls[0] = user from msctl.yaml:9")
	}
	y, err := l.AnnotatedYAML()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(y), "namespace: from-flag # flag --namespace\n") {
		t.Errorf("annotated YAML lacks the namespace origin:\n%s", y)
	}
}

// Every bad input names the file, line and key at fault.
func TestBadInput(t *testing.T) {
	keySvc := func(extra string) string {
		return strings.Replace(minimal, "  - name: user\n", "  - name: user\n"+extra, 1)
	}
	tests := []struct {
		name      string
		src       string
		overrides []Override
		want      string
	}{
		{"malformed yaml", "name: [shop\n", nil, `msctl.yaml:1: malformed YAML: did not find expected ',' or ']'`},
		{"empty file", "", nil, "msctl.yaml: the file is empty"},
		{"unknown top-level key", minimal + "prometeus: {}\n", nil, `msctl.yaml:8:1: prometeus: unknown key (did you mean "prometheus"?)`},
		{"unknown service key", strings.Replace(minimal, "  - name: user\n", "  - name: user\n    replica: 2\n", 1), nil, `msctl.yaml:6:5: services[0].replica: unknown key (did you mean "replicas"?)`},
		{"wrong type", strings.Replace(minimal, "  - name: user\n", "  - name: user\n    replicas: two\n", 1), nil, `msctl.yaml:6:15: services[0].replicas: expected an integer, got "two"`},
		{"list where a mapping belongs", strings.Replace(minimal, "  - name: user\n", "  - name: user\n    ports: [1, 2]\n", 1), nil, `msctl.yaml:6:12: services[0].ports: expected a mapping, got a list`},
		{"bad duration", minimal + "canary:\n  interval: soon\n", nil, `msctl.yaml:9:13: canary.interval: expected a duration such as "30s" or "5m", got "soon"`},
		{"repeated key", "name: a\nname: b\n", nil, "msctl.yaml:2:1: name: key is repeated"},
		{"wrong api version", strings.Replace(minimal, "msctl.dev/v1alpha1", "msctl.dev/v2", 1), nil, `msctl.yaml:1:13: apiVersion: unsupported apiVersion "msctl.dev/v2" (want "msctl.dev/v1alpha1")`},
		{"duplicate service", strings.Replace(minimal, "name: order", "name: user", 1), nil, `msctl.yaml:6:11: services[1].name: duplicate service "user" (first declared as services[0])`},
		{"a canary's name", strings.Replace(minimal, "name: order", "name: user-canary", 1), nil, `msctl.yaml:6:11: services[1].name: "user-canary" ends in -canary, the suffix of a canary's objects: choose another name`},
		{"undeclared callee", strings.Replace(minimal, "calls: [user]", "calls: [user, billing]", 1), nil, `msctl.yaml:7:19: services[1].calls[1]: service "order" calls "billing", which is not declared in services`},
		{"calls itself", strings.Replace(minimal, "calls: [user]", "calls: [order]", 1), nil, `msctl.yaml:7:13: services[1].calls[0]: service "order" calls itself`},
		{"cycle", strings.Replace(minimal, "  - name: user\n", "  - name: user\n    calls: [order]\n", 1), nil, `msctl.yaml:6:12: services[0].calls: services call each other in a cycle: user -> order -> user`},
		{"port out of range", strings.Replace(minimal, "  - name: user\n", "  - name: user\n    ports: {grpc: 70000}\n", 1), nil, `msctl.yaml:6:19: services[0].ports.grpc: port 70000 is out of range 1-65535`},
		{"port clash", strings.Replace(minimal, "  - name: user\n", "  - name: user\n    ports: {grpc: 8080}\n", 1), nil, `msctl.yaml:6:19: services[0].ports.grpc: port 8080 is already the http port`},
		{"bad quantity", strings.Replace(minimal, "  - name: user\n", "  - name: user\n    resources: {limits: {memory: lots}}\n", 1), nil, `msctl.yaml:6:34: services[0].resources.limits.memory: "lots" is not a quantity such as 100m or 128Mi`},
		{"bad service name", strings.Replace(minimal, "name: user", "name: User_Svc", 1), nil, `msctl.yaml:5:11: services[0].name: "User_Svc" is not a valid name: lower-case letters, digits and '-', at most 63 characters`},
		{"steps not increasing", minimal + "canary:\n  steps: [50, 20, 100]\n", nil, `msctl.yaml:9:15: canary.steps[1]: weight 20 does not increase on the weight before it (50)`},
		{"host not a DNS name", minimal + "gateway:\n  hosts: [shop_example]\n", nil, `msctl.yaml:9:11: gateway.hosts[0]: "shop_example" is not a DNS name`},
		{"issuer without audiences", minimal + "auth:\n  issuer: https://auth.example.com\n  jwksUri: https://auth.example.com/jwks.json\n", nil,
			`msctl.yaml:9:3: auth: audiences are required with an issuer: the services accept only tokens meant for them`},
		{"no services", "name: shop\n", nil, `msctl.yaml:1:1: services: the project declares no services`},
		{"bool not true or false", minimal + "gateway:\n  allowCanaryHeader: yes\n", nil, `msctl.yaml:9:22: gateway.allowCanaryHeader: expected true or false, got "yes"`},
		{"unknown scrape mode", minimal + "prometheus:\n  scrape: tls\n", nil, `msctl.yaml:9:11: prometheus.scrape: "tls" is not plaintext or mtls`},
		{"mtls scrape of an outside Prometheus", minimal + "prometheus:\n  address: https://prom.example.com\n  scrape: mtls\n", nil, `msctl.yaml:10:11: prometheus.scrape: mtls needs prometheus.address to be an in-cluster service such as http://prometheus.NAMESPACE.svc:9090, to admit that namespace; got "https://prom.example.com"`},
		{"zero timeout", minimal + "    timeout: 0s\n", nil, `msctl.yaml:8:14: services[1].timeout: must be positive, got 0s`},
		{"timeout cuts the saga", minimal + "    timeout: 15s\n    env: {SAGA_TIMEOUT: 15s}\n", nil, `msctl.yaml:8:14: services[1].timeout: 15s does not outlast SAGA_TIMEOUT (15s): the route would cut the saga short and answer 504 while the saga may still complete; set it above 15s`},
		{"default timeout cuts the saga", minimal + "    env: {SAGA_TIMEOUT: 1m}\n", nil, `msctl.yaml:6:5: services[1].timeout: 10s does not outlast SAGA_TIMEOUT (1m0s): the route would cut the saga short and answer 504 while the saga may still complete; set it above 1m0s`},
		{"saga timeout not a duration", minimal + "    env: {SAGA_TIMEOUT: soon}\n", nil, `msctl.yaml:8:25: services[1].env.SAGA_TIMEOUT: "soon" is not a duration such as 15s`},
		{"bad secret name", minimal + "keys: {secret: Shop_Keys, apiKeys: api-keys.json}\n", nil,
			`msctl.yaml:8:16: keys.secret: "Shop_Keys" is not a valid Secret name`},
		{"no file", minimal + "keys: {secret: shop-keys}\n", nil,
			`msctl.yaml:8:7: keys: names no file of the Secret: set apiKeys, jwks, publicKey or downstreamApiKey`},
		{"file outside the mount", keySvc("    keys: {secret: user-keys, apiKeys: ../etc/passwd}\n"), nil,
			`msctl.yaml:6:40: services[0].keys.apiKeys: "../etc/passwd" is not a key of a Secret (letters, digits, '-', '_' and '.')`},
		{"jwks without an issuer", minimal + "keys: {secret: shop-keys, jwks: jwks.json}\n", nil,
			`msctl.yaml:8:7: keys: JWT keys need the issuer their tokens name: set auth.issuer (or AUTH_JWT_ISSUER in services[0].env)`},
		{"env sets a mounted file", keySvc("    env: {AUTH_API_KEYS_FILE: /keys.json}\n") + "keys: {secret: shop-keys, apiKeys: api-keys.json}\n", nil,
			`msctl.yaml:6:31: services[0].env.AUTH_API_KEYS_FILE: is set by the key Secret "shop-keys" (mounted at /etc/msctl/keys); remove it from env`},
		{"bad override from a flag", minimal, []Override{{Key: "namespace", Value: "Bad NS", Origin: "flag --namespace"}}, `flag --namespace: namespace: "Bad NS" is not a valid name: lower-case letters, digits and '-', at most 63 characters`},
		{"bad override from env", minimal, []Override{{Key: "canary.interval", Value: "x", Origin: "env MSCTL_CANARY_INTERVAL"}}, `env MSCTL_CANARY_INTERVAL: canary.interval: expected a duration such as "30s" or "5m", got "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("msctl.yaml", []byte(tt.src), tt.overrides)
			var cerr *Error
			if !errors.As(err, &cerr) {
				t.Fatalf("got %v, want *config.Error", err)
			}
			if got := cerr.Problems[0].String(); got != tt.want {
				t.Errorf("first problem\n got: %s\nwant: %s", got, tt.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestNewKeysAreReadAndShown(t *testing.T) {
	src := strings.Replace(minimal, "name: shop\n", "name: shop\ngateway:\n  allowCanaryHeader: true\nprometheus:\n  scrape: mtls\n", 1) +
		"    timeout: 20s\n    env: {SAGA_TIMEOUT: 15s}\n"
	l, err := Parse("msctl.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"gateway.allowCanaryHeader": "true msctl.yaml:5",
		"prometheus.scrape":         "mtls msctl.yaml:7",
		"services[1].timeout":       "20s msctl.yaml:12",
		"services[0].timeout":       "10s default",
	}
	for _, e := range l.Entries() {
		if w, ok := want[e.Key]; ok {
			if got := e.Value + " " + e.Origin; got != w {
				t.Errorf("%s = %s, want %s", e.Key, got, w)
			}
			delete(want, e.Key)
		}
	}
	for k := range want {
		t.Errorf("Entries() lacks %s", k)
	}
}

// The settings table is handed out as a copy: a caller cannot change it
// for the next one.
func TestSettingsCannotBeChanged(t *testing.T) {
	first := Settings()
	first[0].Key = "changed"
	if Settings()[0].Key == "changed" {
		t.Fatal("changing the result of Settings() changed the table")
	}
	steps := DefaultSteps()
	steps[0].Weight = 99
	if DefaultSteps()[0].Weight == 99 {
		t.Fatal("changing the result of DefaultSteps() changed the default")
	}
}

func TestAllProblemsAreReported(t *testing.T) {
	src := strings.Replace(minimal, "  - name: user\n", "  - name: user\n    replicas: two\n    color: red\n", 1)
	_, err := Parse("msctl.yaml", []byte(src), nil)
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 2 {
		t.Fatalf("want 2 problems, got %v", err)
	}
	if !strings.HasSuffix(err.Error(), "(and 1 more; see msctl config validate)") {
		t.Errorf("summary line: %s", err)
	}
}

func TestFind(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, "xdg"))
	if _, err := Find(""); err == nil || !strings.Contains(err.Error(), "no project file found") {
		t.Fatalf("Find with no file: %v", err)
	}
	if _, err := Find("missing.yaml"); err == nil || err.Error() != "missing.yaml: no such file" {
		t.Fatalf("Find(missing.yaml): %v", err)
	}
	xdg := filepath.Join(dir, "xdg", "msctl", "config.yaml")
	must(t, os.MkdirAll(filepath.Dir(xdg), 0o755))
	must(t, os.WriteFile(xdg, []byte(minimal), 0o644))
	if got, err := Find(""); err != nil || got != xdg {
		t.Fatalf("Find fell back to %q, %v; want %s", got, err, xdg)
	}
	must(t, os.WriteFile(DefaultFile, []byte(minimal), 0o644))
	if got, err := Find(""); err != nil || got != DefaultFile {
		t.Fatalf("Find preferred %q, %v; want ./msctl.yaml", got, err)
	}
}

func TestStarterIsAValidProject(t *testing.T) {
	data, err := Starter("acme")
	if err != nil {
		t.Fatal(err)
	}
	l, err := Parse("msctl.yaml", data, nil)
	if err != nil {
		t.Fatalf("starter does not load: %v", err)
	}
	if l.Project.Name != "acme" || l.Project.Gateway.Hosts[0] != "acme.example.com" {
		t.Errorf("starter not parameterised: %+v", l.Project)
	}
	if _, err := Starter("Not Valid"); err == nil {
		t.Error("Starter accepted a bad name")
	}
}

// The starter's commented metrics are a valid example: uncommented, with
// the two thresholds they replace removed, the file still loads.
func TestStarterMetricsExample(t *testing.T) {
	data, err := Starter("acme")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, "minSuccessRate:") || strings.Contains(line, "maxP95Latency:") {
			continue
		}
		if rest, ok := strings.CutPrefix(line, "  # "); ok && (strings.HasPrefix(rest, "metrics:") || strings.HasPrefix(rest, "  ")) {
			line = "  " + rest
		}
		lines = append(lines, line)
	}
	l, err := Parse("msctl.yaml", []byte(strings.Join(lines, "\n")), nil)
	if err != nil {
		t.Fatalf("the uncommented example does not load: %v", err)
	}
	if got := len(l.Project.Canary.Metrics); got != 4 {
		t.Errorf("%d metrics, want the example's 4", got)
	}
}

func TestWriteFileRefusesToOverwrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "msctl.yaml")
	must(t, WriteFile(path, []byte("one"), false))
	err := WriteFile(path, []byte("two"), false)
	if err == nil || !strings.Contains(err.Error(), "already exists; pass --force") {
		t.Fatalf("second write: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "one" {
		t.Fatalf("file changed to %q", b)
	}
	must(t, WriteFile(path, []byte("two"), true))
	if b, _ := os.ReadFile(path); string(b) != "two" {
		t.Fatalf("forced write left %q", b)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("temporary files left behind: %v", entries)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// aliasBomb is a project of about size bytes whose aliases nest: every
// service is the one anchored mapping and every service's routes are the one
// anchored list, so decoding would follow (size/10)^2 nodes.
func aliasBomb(size int) []byte {
	n := size / 10
	var b strings.Builder
	b.WriteString("apiVersion: msctl.dev/v1alpha1\nkind: Project\nname: shop\n")
	b.WriteString("gateway:\n  hosts: &r [")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("a.io")
	}
	b.WriteString("]\nservices: [&s {name: user, routes: *r}")
	for range n {
		b.WriteString(", *s")
	}
	b.WriteString("]\n")
	return []byte(b.String())
}

// A file of nested aliases ("billion laughs") is refused quickly, with one
// line naming the file, instead of being expanded until memory runs out.
func TestAliasExpansionIsBounded(t *testing.T) {
	data := aliasBomb(1 << 20)
	done := make(chan error, 1)
	go func() {
		_, err := Parse("bomb.yaml", data, nil)
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Parse of a 1 MB file of nested aliases did not return within 10s")
	}
	var cerr *Error
	if !errors.As(err, &cerr) || len(cerr.Problems) != 1 {
		t.Fatalf("got %v, want one *config.Error problem", err)
	}
	if msg := err.Error(); !strings.HasPrefix(msg, "bomb.yaml:") || !strings.Contains(msg, "alias") || strings.Contains(msg, "\n") {
		t.Errorf("error %q is not one line naming the file and the aliases", msg)
	}
}

// Unknown keys under an alias expand too: they are counted like the rest.
func TestAliasExpansionOfUnknownKeysIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("apiVersion: msctl.dev/v1alpha1\nkind: Project\nname: shop\nservices: [&s {name: user")
	for i := range 20000 {
		fmt.Fprintf(&b, ", k%d: x", i)
	}
	b.WriteString("}")
	b.WriteString(strings.Repeat(", *s", 20000))
	b.WriteString("]\n")
	done := make(chan error, 1)
	go func() { _, err := Parse("bomb.yaml", []byte(b.String()), nil); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "aliases") || strings.Contains(err.Error(), "\n") {
			t.Errorf("error %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Parse of aliased unknown keys did not return within 10s")
	}
}

// Aliases that repeat a block a few times, as people write them, still load.
func TestModestAliasesLoad(t *testing.T) {
	src := strings.Replace(minimal, "  - name: user\n", "  - name: user\n    resources: &res {requests: {cpu: 10m, memory: 8Mi}}\n    env: &env {LOG_LEVEL: debug, A: b}\n", 1) +
		"    resources: *res\n    env: *env\n"
	l, err := Parse("msctl.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	if o := l.Project.Service("order"); o.Resources.Requests.CPU != "10m" || o.Env["A"] != "b" {
		t.Errorf("aliased blocks not decoded: %+v", o)
	}
}
