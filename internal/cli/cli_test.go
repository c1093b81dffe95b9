package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/iostreams"
	"github.com/spf13/cobra"
)

const project = `apiVersion: msctl.dev/v1alpha1
kind: Project
name: shop
namespace: from-file
services:
  - name: user
  - name: order
    calls: [user]
`

type result struct {
	code        int
	stdout      string
	stderr      string
	stdoutBytes []byte
}

// run executes msctl in dir with the given files, no terminal unless tty.
func run(t *testing.T, dir string, tty bool, args ...string) result {
	t.Helper()
	t.Chdir(dir)
	streams, _, out, errOut := iostreams.Test()
	streams.SetTTY(tty)
	code := Run(context.Background(), args, streams)
	return result{code, out.String(), errOut.String(), out.Bytes()}
}

// projectDir is a temp dir holding msctl.yaml with the given content, and an
// XDG config home of its own so the developer's files never leak in.
func projectDir(t *testing.T, content string) string {
	t.Helper()
	dir := t.TempDir()
	const kubeconfig = "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: \"https://127.0.0.1:1\"}}]\n" +
		"users: [{name: u, user: {token: t}}]\ncontexts: [{name: test, context: {cluster: c, user: u}}]\ncurrent-context: test\n"
	if err := os.WriteFile(filepath.Join(dir, "kubeconfig"), []byte(kubeconfig), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CONFIG_HOME", filepath.Join(dir, ".xdg"))
	if content != "" {
		if err := os.WriteFile(filepath.Join(dir, "msctl.yaml"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func listDir(t *testing.T, dir string) []string {
	t.Helper()
	var names []string
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

func TestVersion(t *testing.T) {
	dir := projectDir(t, "")
	r := run(t, dir, false, "version", "-o", "json")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var v map[string]string
	if err := json.Unmarshal(r.stdoutBytes, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	for _, k := range []string{"version", "commit", "buildDate", "goVersion", "platform"} {
		if v[k] == "" {
			t.Errorf("version JSON lacks %q: %s", k, r.stdout)
		}
	}
	for _, tty := range []bool{true, false} {
		r := run(t, dir, tty, "version")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "msctl ") || strings.Count(r.stdout, "\n") != 1 || r.stderr != "" {
			t.Errorf("tty=%v: %+v", tty, r)
		}
	}
}

// version and --help must stay instant: they read no project file and no
// kubeconfig, so broken ones can't slow or fail them.
func TestVersionAndHelpReadNothing(t *testing.T) {
	dir := projectDir(t, "apiVersion: [broken\n")
	t.Setenv("KUBECONFIG", filepath.Join(dir, "missing-kubeconfig"))
	t.Setenv("MSCTL_CONFIG", filepath.Join(dir, "missing.yaml"))
	for _, args := range [][]string{{"version"}, {"--help"}, {"config", "--help"}} {
		if r := run(t, dir, false, args...); r.code != 0 || r.stderr != "" {
			t.Errorf("%v: %+v", args, r)
		}
	}
}

// Every command explains itself: a summary, a description and examples.
func TestEveryCommandHasHelp(t *testing.T) {
	streams, _, _, _ := iostreams.Test()
	root := NewRootCmd(newFactory(streams))
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Hidden || c.Name() == "help" {
			return
		}
		if c.Short == "" || c.Long == "" || c.Example == "" {
			t.Errorf("%q lacks a summary, description or examples", c.CommandPath())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

func TestBadUsageAndInput(t *testing.T) {
	tests := []struct {
		name    string
		file    string
		env     map[string]string
		args    []string
		wantErr string
	}{
		{"unknown command", project, nil, []string{"frobnicate"}, `msctl: unknown command "frobnicate" for "msctl" (see 'msctl --help')`},
		{"misspelt command", project, nil, []string{"deplyo"}, `msctl: unknown command "deplyo" for "msctl"; did you mean deploy? (see 'msctl --help')`},
		{"unknown command with a suggestion", project, nil, []string{"confg"}, `msctl: unknown command "confg" for "msctl"; did you mean config? (see 'msctl --help')`},
		{"unknown subcommand", project, nil, []string{"config", "shwo"}, `msctl: unknown command "shwo" for "msctl config" (see 'msctl config --help')`},
		{"unknown flag", project, nil, []string{"version", "--colour"}, `msctl: unknown flag: --colour (see 'msctl version --help')`},
		{"bad -o", project, nil, []string{"version", "-o", "xml"}, `msctl: flag --output: unknown output format "xml" (want table, json or yaml)`},
		{"bad MSCTL_OUTPUT", project, map[string]string{"MSCTL_OUTPUT": "csv"}, []string{"version"}, `msctl: env MSCTL_OUTPUT: unknown output format "csv" (want table, json or yaml)`},
		{"verbose and quiet", project, nil, []string{"version", "-v", "-q"}, `msctl: --verbose and --quiet cannot be used together`},
		{"extra argument", project, nil, []string{"version", "now"}, `msctl: unknown command "now" for "msctl version" (see 'msctl version --help')`},
		{"bad completion shell", project, nil, []string{"completion", "tcsh"}, `msctl: invalid argument "tcsh" for "msctl completion" (see 'msctl completion --help')`},
		{"missing --config", project, nil, []string{"config", "view", "--config", "nope.yaml"}, `msctl: nope.yaml: no such file`},
		{"no project file", "", nil, []string{"config", "view"}, `msctl: msctl.yaml: no project file found`},
		{"malformed YAML", "name: [shop\n", nil, []string{"config", "view"}, `msctl: msctl.yaml:1: malformed YAML: did not find expected ',' or ']'`},
		{"unknown key", project + "  - name: pay\n    prots: {}\n", nil, []string{"config", "view"}, `msctl: msctl.yaml:10:5: services[2].prots: unknown key (did you mean "ports"?)`},
		{"wrong type", strings.Replace(project, "namespace: from-file", "namespace: [a]", 1), nil, []string{"config", "view"}, `msctl: msctl.yaml:4:12: namespace: expected a string, got a list`},
		{"undeclared callee", strings.Replace(project, "calls: [user]", "calls: [billing]", 1), nil, []string{"config", "view"}, `msctl: msctl.yaml:8:13: services[1].calls[0]: service "order" calls "billing", which is not declared in services`},
		{"duplicate service", strings.Replace(project, "name: order", "name: user", 1), nil, []string{"config", "view"}, `msctl: msctl.yaml:7:11: services[1].name: duplicate service "user" (first declared as services[0])`},
		{"port out of range", project + "    ports: {http: 0}\n", nil, []string{"config", "view"}, `msctl: msctl.yaml:9:19: services[1].ports.http: port 0 is out of range 1-65535`},
		{"bad namespace flag", project, nil, []string{"config", "view", "-n", "Prod!"}, `msctl: flag --namespace: namespace: "Prod!" is not a valid name`},
		{"unknown service", project, nil, []string{"config", "view", "billing"}, `msctl: unknown service "billing" (the project has: user, order)`},
		{"deploy: timeout below 1s", project, nil, []string{"deploy", "--timeout", "500ms"}, `msctl: --timeout 500ms is below the minimum of 1s`},
		{"deploy: unknown service", project, nil, []string{"deploy", "billing"}, `msctl: unknown service "billing" (the project has: user, order)`},
		{"build: unknown service", project, nil, []string{"build", "billing"}, `msctl: unknown service "billing" (the project has: user, order)`},
		{"build: unknown platform", project, nil, []string{"build", "--platform", "linux/amd64,windows/386"}, `msctl: --platform: platform "windows/386": want one of linux/amd64, linux/arm64`},
		{"deploy: no build of this commit", project, nil, []string{"deploy"}, `msctl: no image given and no commit to look a build up by`},
		{"deploy: --build and --tag", project, nil, []string{"deploy", "--build", "--tag", "v1"}, `msctl: --build and --tag cannot be used together`},
		{"deploy: --image without a service", project, nil, []string{"deploy", "--image", "localhost:5000/user:v1"}, `msctl: --image localhost:5000/user:v1: want SERVICE=REF`},
		{"deploy: --image of an unknown service", project, nil, []string{"deploy", "--image", "billing=localhost:5000/billing:v1"}, `msctl: --image billing=localhost:5000/billing:v1: unknown service "billing"`},
		{"deploy: --image of a service not deployed", project, nil, []string{"deploy", "user", "--image", "order=localhost:5000/order:v1"}, `msctl: --image order=...: order is not among the services being deployed (user)`},
		{"deploy: unsafe env through --set", project, nil, []string{"deploy", "--tag", "v1", "--set", "env.AUTH_DEV_MODE=true"}, `msctl: --set: env.AUTH_DEV_MODE is unsafe in a deployed service (dev mode signs tokens with a key made at start-up and logs a 24-hour admin token); remove it or pass --allow-unsafe-env`},
		{"render: unsafe env through --set", project, nil, []string{"render", "--set", "env.FAULT_ERROR_RATE=0.5"}, `msctl: --set: env.FAULT_ERROR_RATE is unsafe in a deployed service (fault injection fails or delays real requests); remove it or pass --allow-unsafe-env`},
		{"deploy: --image without tag or digest", project, nil, []string{"deploy", "--image", "user=localhost:5000/user"}, `msctl: --image user=localhost:5000/user: image reference "localhost:5000/user" names neither a tag nor a digest`},
		{"canary: --build with --tag", project, nil, []string{"canary", "run", "user", "--build", "--tag", "v2"}, `msctl: --build cannot be used with --tag or --image`},
		{"deploy: bad --parallel", project, nil, []string{"deploy", "--parallel", "0"}, `msctl: --parallel 0: want at least 1`},
		{"deploy: lock TTL too short", project, nil, []string{"deploy", "--lock-ttl", "1s"}, `msctl: --lock-ttl 1s: want whole seconds from 2s to 1h`},
		{"rollback: lock TTL too long", project, nil, []string{"rollback", "user", "--lock-ttl", "2h"}, `msctl: --lock-ttl 2h0m0s: want whole seconds from 2s to 1h`},
		{"deploy: lock TTL not whole seconds", project, nil, []string{"deploy", "--lock-ttl", "2500ms"}, `msctl: --lock-ttl 2.5s: want whole seconds from 2s to 1h`},
		{"destroy off a terminal without --yes", project, nil, []string{"destroy", "user"}, `msctl: destroy needs --yes when not run on a terminal (see 'msctl destroy --help')`},
		{"destroy of nothing", project, nil, []string{"destroy", "--yes"}, `msctl: name the services to destroy, or pass --all (see 'msctl destroy --help')`},
		{"rollback to a non-number", project, nil, []string{"rollback", "user", "x"}, `msctl: revision "x": want a positive number (see msctl history user) (see 'msctl rollback --help')`},
		{"history without a service", project, nil, []string{"history"}, `msctl: accepts 1 arg(s), received 0 (see 'msctl history --help')`},
		{"unknown kube context", project + "kube:\n  kubeconfig: kubeconfig\n", nil, []string{"status", "--context", "nope"}, `msctl: context "nope" is not in the kubeconfig`},
		{"canary: unknown service", project, nil, []string{"canary", "run", "billing"}, `msctl: unknown service "billing" (the project has: user, order)`},
		{"canary start: neither tag nor image", project, nil, []string{"canary", "start", "user"}, `msctl: give --tag or --image (see 'msctl canary start --help')`},
		{"canary: tag and image", project, nil, []string{"canary", "run", "user", "--tag", "x", "--image", "y"}, `msctl: --tag and --image cannot be used together`},
		{"canary: bad tag", project, nil, []string{"canary", "run", "user", "--tag", "bad tag"}, `msctl: --tag bad tag: image reference "localhost:5000/user:bad tag": tag "bad tag" is not letters`},
		{"canary: steps not ending at 100", project + "canary:\n  steps: [10, 50]\n", nil, []string{"canary", "run", "user", "--tag", "v2"},
			`msctl: msctl.yaml:10:15: canary.steps[1]: the last weight step must be 100, got 50: the canary takes all traffic before it is promoted`},
		{"canary: unparsable PromQL", project + "canary:\n  metrics:\n    - name: errors\n      query: sum(rate(x[{{ interval }}]) /\n      max: 1\n", nil,
			[]string{"canary", "run", "user", "--tag", "v2"}, `msctl: msctl.yaml:12:14: canary.metrics[0].query: 1:30: parse error: unclosed left parenthesis`},
		{"canary: threshold out of range", project + "canary:\n  thresholds:\n    minSuccessRate: 150\n", nil, []string{"canary", "run", "user", "--tag", "v2"},
			`msctl: msctl.yaml:11:21: canary.thresholds.minSuccessRate: 150: want a percentage above 0 and below 100`},
		{"render: unknown service", project, nil, []string{"render", "billing"}, `msctl: unknown service "billing" (the project has: user, order)`},
		{"canary: --env without --local", project, nil, []string{"canary", "run", "user", "--env", "A=1"}, `msctl: --env needs --local`},
		{"canary: --tag with --local", project, nil, []string{"canary", "run", "user", "--local", "--tag", "v2"},
			`msctl: --tag and --image are for a cluster; with --local the canary is built from the working tree, --ref or --env`},
		{"canary: --env not K=V", project, nil, []string{"canary", "run", "user", "--local", "--env", "A"}, `msctl: --env "A": want KEY=VALUE`},
		{"canary: --load above the bound", project, nil, []string{"canary", "run", "user", "--local", "--load", "5000"}, `msctl: --load 5000: want 0 (none) up to 1000 requests a second`},
		{"canary: local with no supervisor", project, nil, []string{"canary", "run", "user", "--local"}, `msctl: nothing runs in `},
		{"load: no supervisor", project, nil, []string{"load"}, `msctl: nothing runs in `},
		{"load: rate 0", project, nil, []string{"load", "--rate", "0"}, `msctl: --rate 0: want above 0 and at most 1000 requests a second`},
		{"load: rate NaN", project, nil, []string{"load", "--rate", "NaN"}, `msctl: --rate NaN: want above 0 and at most 1000 requests a second`},
		{"canary: --load NaN", project, nil, []string{"canary", "run", "user", "--local", "--load", "NaN"}, `msctl: --load NaN: want 0 (none) up to 1000 requests a second`},
		{"load: unknown route", project, nil, []string{"load", "--route", "/admin"}, `msctl: --route: route "/admin": load knows /api/v1/orders, /api/v1/products, /api/v1/users`},
		{"up: unknown service", project, nil, []string{"up", "billing"}, `msctl: unknown service "billing" (the project has: user, order)`},
		{"up: port base too high", project, nil, []string{"up", "--port-base", "65530"}, `msctl: port base 65530: the local runtime needs ports 65530-65560, within 1024-65535`},
		{"up: timeout below 1s", project, nil, []string{"up", "--timeout", "500ms"}, `msctl: --timeout 500ms is below the minimum of 1s`},
		{"down: nothing runs", project, nil, []string{"down"}, `msctl: nothing runs in `},
		{"logs: never ran", project, nil, []string{"logs", "user"}, `msctl: no stable log of user in `},
		{"logs: unknown service", project, nil, []string{"logs", "billing"}, `msctl: unknown service "billing" (the project has: user, order)`},
		{"logs: no service", project, nil, []string{"logs"}, `msctl: accepts 1 arg(s), received 0 (see 'msctl logs --help')`},
		{"status --local: nothing runs", project, nil, []string{"status", "--local"}, `msctl: nothing runs in `},
		{"render: weight above 100", project, nil, []string{"render", "--canary-weight", "101"}, `msctl: --canary-weight 101: want a weight from 0 to 100, or SERVICE=WEIGHT`},
		{"render: weight for a service not rendered", project, nil, []string{"render", "user", "--canary-weight", "order=5"}, `msctl: --canary-weight order=5: "order" is not a service being rendered (user)`},
		{"render: --set outside the schema", project, nil, []string{"render", "user", "--set", "replicaz=3"}, `msctl: user: chart values rejected: at '': additional properties 'replicaz' not allowed`},
		{"render: bad --set syntax", project, nil, []string{"render", "--set", "noequals"}, `msctl: --set noequals: key "noequals" has no value`},
		{"render: missing values file", project, nil, []string{"render", "-f", "nope.yaml"}, `msctl: -f nope.yaml: no such file or directory`},
		{"render: host not a DNS name", project + "gateway:\n  hosts: [shop_example]\n", nil, []string{"render"}, `msctl: msctl.yaml:10:11: gateway.hosts[0]: "shop_example" is not a DNS name`},
		{"config validate: dev mode in a service's env", devMode, nil, []string{"config", "validate"},
			`msctl.yaml:8:22: services[0].env.AUTH_DEV_MODE: is unsafe in a deployed service (dev mode signs tokens with a key made at start-up and logs a 24-hour admin token); remove it or pass --allow-unsafe-env`},
		{"render: fault injection in a service's env", strings.Replace(project, "  - name: order\n", "  - name: order\n    env: {FAULT_ERROR_RATE: \"0.5\"}\n", 1), nil, []string{"render"},
			`msctl: msctl.yaml:8:29: services[1].env.FAULT_ERROR_RATE: is unsafe in a deployed service (fault injection fails or delays real requests)`},
		{"deploy: pprof in a service's env", strings.Replace(project, "  - name: order\n", "  - name: order\n    env: {ADMIN_PPROF: \"true\"}\n", 1), nil, []string{"deploy"},
			`msctl: msctl.yaml:8:24: services[1].env.ADMIN_PPROF: is unsafe in a deployed service (pprof on the admin port exposes heap contents and costs CPU on demand)`},
		{"canary: dev mode in the service's env", devMode, nil, []string{"canary", "run", "user", "--tag", "v2"},
			`msctl: msctl.yaml:8:22: services[0].env.AUTH_DEV_MODE: is unsafe in a deployed service`},
		{"keys: bad Secret name", project + "keys: {secret: Shop_Keys, apiKeys: api-keys.json}\n", nil, []string{"config", "view"},
			`msctl: msctl.yaml:9:16: keys.secret: "Shop_Keys" is not a valid Secret name`},
		{"keys: no file named", project + "keys: {secret: shop-keys}\n", nil, []string{"render"},
			`msctl: msctl.yaml:9:7: keys: names no file of the Secret: set apiKeys, jwks, publicKey or downstreamApiKey`},
		{"keys: env sets a mounted file", strings.Replace(project, "  - name: order\n", "  - name: order\n    env: {AUTH_API_KEYS_FILE: /k.json}\n", 1) + "keys: {secret: shop-keys, apiKeys: api-keys.json}\n", nil, []string{"deploy"},
			`msctl: msctl.yaml:8:31: services[1].env.AUTH_API_KEYS_FILE: is set by the key Secret "shop-keys" (mounted at /etc/msctl/keys); remove it from env`},
		{"render: service calls itself", strings.Replace(project, "calls: [user]", "calls: [order]", 1), nil, []string{"render"}, `msctl: msctl.yaml:8:13: services[1].calls[0]: service "order" calls itself`},
	}
	tests = append(tests, struct {
		name    string
		file    string
		env     map[string]string
		args    []string
		wantErr string
	}{"nested YAML aliases", aliasBomb(), nil, []string{"config", "view"}, `msctl: msctl.yaml:4:3831: YAML aliases expand the file beyond 14034 values; nested aliases are refused`})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := projectDir(t, tt.file)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			before := listDir(t, dir)
			r := run(t, dir, false, tt.args...)
			if r.code != ExitUsage {
				t.Errorf("exit code %d, want %d", r.code, ExitUsage)
			}
			if !strings.HasPrefix(r.stderr, tt.wantErr) {
				t.Errorf("stderr\n got: %q\nwant: %q...", r.stderr, tt.wantErr)
			}
			if strings.Count(r.stderr, "\n") != 1 {
				t.Errorf("stderr is not one line: %q", r.stderr)
			}
			if r.stdout != "" {
				t.Errorf("stdout not empty: %q", r.stdout)
			}
			if after := listDir(t, dir); strings.Join(after, ",") != strings.Join(before, ",") {
				t.Errorf("files changed: %v -> %v", before, after)
			}
		})
	}
}

// devMode is project with AUTH_DEV_MODE in user's env.
var devMode = strings.Replace(project, "  - name: user\n", "  - name: user\n    env:\n      AUTH_DEV_MODE: \"true\"\n", 1)

// aliasBomb is a project file in which a thousand services are one
// anchored mapping whose routes are one anchored list of a thousand.
func aliasBomb() string {
	routes := strings.Repeat("/a, ", 999) + "/a"
	services := strings.Repeat(", *s", 1000)
	return "apiVersion: msctl.dev/v1alpha1\nkind: Project\nname: shop\nx-routes: &r [" + routes + "]\n" +
		"services: [&s {name: user, routes: *r}" + services + "]\n"
}

// Precedence: flag, then MSCTL_* variable, then file, then default.
func TestPrecedence(t *testing.T) {
	noNamespace := strings.Replace(project, "namespace: from-file\n", "", 1)
	tests := []struct {
		name       string
		file       string
		env        string
		flag       string
		want       string
		wantOrigin string
	}{
		{"flag wins", project, "from-env", "from-flag", "from-flag", "flag --namespace"},
		{"env over file", project, "from-env", "", "from-env", "env MSCTL_NAMESPACE"},
		{"file over default", project, "", "", "from-file", "msctl.yaml:4"},
		{"default", noNamespace, "", "", "shop", "default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := projectDir(t, tt.file)
			t.Setenv("MSCTL_NAMESPACE", tt.env)
			args := []string{"config", "view", "--show-origin", "-o", "json"}
			if tt.flag != "" {
				args = append(args, "--namespace", tt.flag)
			}
			r := run(t, dir, false, args...)
			if r.code != 0 {
				t.Fatalf("exit %d: %s", r.code, r.stderr)
			}
			var entries []struct{ Key, Value, Origin string }
			if err := json.Unmarshal(r.stdoutBytes, &entries); err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if e.Key == "namespace" {
					if e.Value != tt.want || e.Origin != tt.wantOrigin {
						t.Errorf("namespace = %q from %q, want %q from %q", e.Value, e.Origin, tt.want, tt.wantOrigin)
					}
					return
				}
			}
			t.Fatalf("no namespace entry in %s", r.stdout)
		})
	}
}

func TestConfigFileFromEnvAndXDG(t *testing.T) {
	dir := projectDir(t, "")
	other := filepath.Join(dir, "other.yaml")
	if err := os.WriteFile(other, []byte(strings.Replace(project, "name: shop", "name: other", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MSCTL_CONFIG", other)
	r := run(t, dir, false, "config", "view", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "other"`) {
		t.Fatalf("MSCTL_CONFIG ignored: %+v", r)
	}
	t.Setenv("MSCTL_CONFIG", "")
	xdg := filepath.Join(dir, ".xdg", "msctl", "config.yaml")
	if err := os.MkdirAll(filepath.Dir(xdg), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(xdg, []byte(strings.Replace(project, "name: shop", "name: xdg", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	r = run(t, dir, false, "config", "view", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "xdg"`) {
		t.Fatalf("XDG fallback ignored: %+v", r)
	}
}

func TestConfigView(t *testing.T) {
	dir := projectDir(t, project)
	r := run(t, dir, false, "config", "view", "order")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout, "- calls:\n    - user\n") && !strings.Contains(r.stdout, "name: order") || strings.Contains(r.stdout, "name: user") {
		t.Errorf("view of order only:\n%s", r.stdout)
	}
	r = run(t, dir, false, "config", "view", "order", "-o", "yaml", "--show-origin")
	if r.code != 0 || !strings.Contains(r.stdout, "  - name: order # msctl.yaml:7\n") || !strings.Contains(r.stdout, "      http: 8080 # default\n") {
		t.Errorf("annotated view:\n%s", r.stdout)
	}
}

func TestConfigValidate(t *testing.T) {
	r := run(t, projectDir(t, project), false, "config", "validate")
	if r.code != 0 || r.stdout != "msctl.yaml is valid: 2 services (user, order)\n" {
		t.Fatalf("valid project: %+v", r)
	}
	bad := strings.Replace(project, "  - name: user\n", "  - name: user\n    replicas: many\n    colour: red\n", 1)
	r = run(t, projectDir(t, bad), false, "config", "validate")
	want := "msctl.yaml:7:15: services[0].replicas: expected an integer, got \"many\"\nmsctl.yaml:8:5: services[0].colour: unknown key\n"
	if r.code != ExitUsage || r.stderr != want || r.stdout != "" {
		t.Fatalf("invalid project, table: %+v", r)
	}
	r = run(t, projectDir(t, bad), false, "config", "validate", "-o", "json")
	var res validateResult
	if err := json.Unmarshal(r.stdoutBytes, &res); err != nil {
		t.Fatal(err)
	}
	if r.code != ExitUsage || res.Valid || len(res.Problems) != 2 || res.Problems[1].Path != "services[0].colour" {
		t.Fatalf("invalid project, json: %+v", r)
	}
	// A local or test cluster may run the unsafe variables on purpose.
	r = run(t, projectDir(t, devMode), false, "config", "validate", "--allow-unsafe-env")
	if r.code != 0 || r.stdout != "msctl.yaml is valid: 2 services (user, order)\n" {
		t.Fatalf("--allow-unsafe-env: %+v", r)
	}
}

func TestRender(t *testing.T) {
	dir := projectDir(t, project)
	r := run(t, dir, false, "render", "order", "--canary-weight", "30")
	if r.code != 0 || !strings.Contains(r.stdout, "kind: VirtualService") || !strings.Contains(r.stdout, "weight: 70") {
		t.Fatalf("render: exit %d, stderr %s", r.code, r.stderr)
	}
	if strings.Contains(r.stdout, "name: user\n") {
		t.Error("render order printed user's objects")
	}
	r = run(t, dir, false, "render", "user", "-o", "json")
	var list struct {
		Kind  string
		Items []map[string]any
	}
	if err := json.Unmarshal(r.stdoutBytes, &list); err != nil || list.Kind != "List" || len(list.Items) == 0 {
		t.Fatalf("render -o json: %v %+v", err, r)
	}
	out := filepath.Join(dir, "manifests")
	r = run(t, dir, false, "render", "user", "--out", out)
	if r.code != 0 {
		t.Fatalf("render --out: %+v", r)
	}
	for _, f := range []string{"user-deployment.yaml", "user-virtualservice.yaml", "shop-namespace.yaml"} {
		if _, err := os.Stat(filepath.Join(out, f)); err != nil {
			t.Errorf("render --out did not write %s: %v", f, err)
		}
	}
}

func TestLint(t *testing.T) {
	dir := projectDir(t, project)
	r := run(t, dir, false, "lint", "-o", "json")
	var findings []struct{ Severity, Subject, Message string }
	if err := json.Unmarshal(r.stdoutBytes, &findings); err != nil {
		t.Fatalf("lint -o json: %v\n%s", err, r.stdout)
	}
	if r.code != ExitFailure || len(findings) != 3 || findings[0].Message != "source directory services/user does not exist" {
		t.Fatalf("lint without sources: exit %d, %+v", r.code, findings)
	}
	for _, svc := range []string{"user", "order"} {
		if err := os.MkdirAll(filepath.Join(dir, "services", svc), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r = run(t, dir, false, "lint")
	if r.code != 0 {
		t.Fatalf("lint of a clean project: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

func TestDestroyAsksOnATerminal(t *testing.T) {
	dir := projectDir(t, project)
	t.Chdir(dir)
	for _, answer := range []string{"n\n", "\n", ""} {
		streams, in, out, errOut := iostreams.Test()
		streams.SetTTY(true)
		in.WriteString(answer)
		code := Run(context.Background(), []string{"destroy", "user"}, streams)
		if code != 0 || out.Len() != 0 || errOut.String() != "Destroy user in namespace from-file? [y/N] Nothing destroyed.\n" {
			t.Errorf("answer %q: exit %d, stdout %q, stderr %q", answer, code, out, errOut)
		}
	}
}

func TestInit(t *testing.T) {
	dir := projectDir(t, "")
	r := run(t, dir, false, "init", "--name", "acme")
	if r.code != 0 || r.stdout != "Wrote msctl.yaml for project \"acme\". Edit its services, then run: msctl config validate\n" {
		t.Fatalf("init: %+v", r)
	}
	if r := run(t, dir, false, "config", "validate"); r.code != 0 {
		t.Fatalf("starter does not validate: %+v", r)
	}
	written, _ := os.ReadFile(filepath.Join(dir, "msctl.yaml"))
	r = run(t, dir, false, "init", "--name", "other")
	if r.code != ExitUsage || r.stderr != "msctl: msctl.yaml: already exists; pass --force to overwrite it\n" {
		t.Fatalf("second init: %+v", r)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "msctl.yaml")); !bytes.Equal(now, written) {
		t.Fatal("init without --force changed the file")
	}
	r = run(t, dir, false, "init", "--name", "other", "--force", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "other"`) {
		t.Fatalf("forced init: %+v", r)
	}
	r = run(t, dir, false, "init", "--name", "Bad Name", "--force")
	if r.code != ExitUsage || !strings.HasPrefix(r.stderr, `msctl: --name: "Bad Name" is not a valid project name`) {
		t.Fatalf("bad name: %+v", r)
	}
}

func TestInitNamesProjectAfterDirectory(t *testing.T) {
	dir := filepath.Join(projectDir(t, ""), "My_Shop")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r := run(t, dir, false, "init", "-o", "json")
	if r.code != 0 || !strings.Contains(r.stdout, `"name": "my-shop"`) {
		t.Fatalf("init: %+v", r)
	}
}

// Colour only on a terminal, and never with NO_COLOR or --no-color.
func TestColourFollowsTheTerminal(t *testing.T) {
	dir := projectDir(t, project)
	const bold = "\x1b[1m"
	if r := run(t, dir, true, "config", "view", "--show-origin"); !strings.HasPrefix(r.stdout, bold+"KEY") {
		t.Errorf("no bold header on a terminal: %q", r.stdout[:min(40, len(r.stdout))])
	}
	if r := run(t, dir, false, "config", "view", "--show-origin"); strings.Contains(r.stdout, "\x1b[") {
		t.Error("colour written to a pipe")
	}
	if r := run(t, dir, true, "config", "view", "--show-origin", "--no-color"); strings.Contains(r.stdout, "\x1b[") {
		t.Error("colour despite --no-color")
	}
}

func TestLogsGoToStderrAsJSONWhenPiped(t *testing.T) {
	dir := projectDir(t, project)
	r := run(t, dir, false, "config", "validate", "-v")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	var rec map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(r.stderr, "\n", 2)[0]), &rec); err != nil || rec["msg"] != "loading project file" {
		t.Errorf("piped debug log is not JSON: %q", r.stderr)
	}
	r = run(t, dir, true, "config", "validate", "-v")
	if !strings.Contains(r.stderr, "level=DEBUG msg=\"loading project file\"") {
		t.Errorf("terminal debug log is not text: %q", r.stderr)
	}
}
