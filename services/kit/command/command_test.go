package command

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/msctl/msctl/services/kit/config"
	"github.com/msctl/msctl/services/kit/host"
)

type stoppedApp struct{}

func (stoppedApp) Run(context.Context) error { return nil }
func (stoppedApp) DevToken() string          { return "" }
func (stoppedApp) Addrs() host.Addrs         { return host.Addrs{HTTP: &net.TCPAddr{}} }

// widget is a service with the common variables and one of its own, whose
// New fails with newErr.
func widget(newErr error) Service[host.Config, App] {
	return Service[host.Config, App]{
		Name: "widget",
		Load: func(l Lookup) (host.Config, error) {
			e := config.New(l)
			c := host.LoadConfig(e, "widget", "/tmp/widget.db")
			_ = e.String("WIDGET_COLOUR", "blue")
			return c, e.Err()
		},
		New: func(context.Context, host.Config, *slog.Logger, Lookup) (App, error) {
			if newErr != nil {
				return nil, newErr
			}
			return stoppedApp{}, nil
		},
	}
}

func TestRun(t *testing.T) {
	keysMissing := fmt.Errorf("building app: %w", config.Invalid("AUTH_API_KEYS_FILE", errors.New("open /nonexistent: no such file or directory")))
	cases := []struct {
		name    string
		args    []string
		env     map[string]string
		newErr  error
		code    int
		stdout  []string // each must appear
		stderr  []string // each must appear
		oneLine bool     // stderr is exactly one line
	}{
		{name: "help", args: []string{"--help"}, code: 0, stdout: []string{
			"Usage: widget [flags]", "-health-check", "read from environment variables",
			"with their defaults", "  GRPC_ADDR ", " :9090\n", "  ADMIN_ADDR ", " :8081\n", "  DATABASE_URL ", "  LOG_LEVEL ", " info\n",
			"  READINESS_INTERVAL ", " 2s\n", "  AUTH_API_KEYS_FILE ", " (none)\n", "  WIDGET_COLOUR ", " blue\n", "OTEL_EXPORTER_OTLP_ENDPOINT"}},
		{name: "short help", args: []string{"-h"}, code: 0, stdout: []string{"Usage: widget"}},
		{name: "extra argument", args: []string{"extra-arg"}, code: 2,
			stderr: []string{`widget: unexpected argument "extra-arg"`}, oneLine: true},
		{name: "argument after a flag", args: []string{"--dev", "serve"}, code: 2,
			stderr: []string{`unexpected argument "serve"`}, oneLine: true},
		{name: "unknown flag", args: []string{"--nope"}, code: 2, stderr: []string{"-nope", "widget --help"}},
		{name: "version", args: []string{"--version"}, code: 0, stdout: []string{"widget "}},
		{name: "bad variable", env: map[string]string{"LOG_LEVEL": "loud"}, code: 2,
			stderr: []string{"widget: invalid configuration: LOG_LEVEL"}, oneLine: true},
		{name: "unusable key file is configuration", newErr: keysMissing, code: 2,
			stderr: []string{"widget: invalid configuration: AUTH_API_KEYS_FILE: open /nonexistent"}, oneLine: true},
		{name: "other start-up failure", newErr: errors.New("listen: address in use"), code: 1,
			stderr: []string{`"msg":"start-up failed"`, "address in use"}},
		{name: "serves and stops", env: map[string]string{"LOG_LEVEL": "error"}, code: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := Run(widget(tc.newErr), tc.args, config.FromMap(tc.env), &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.stdout {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.stderr {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q:\n%s", w, errb.String())
				}
			}
			if tc.oneLine && strings.Count(errb.String(), "\n") != 1 {
				t.Errorf("stderr is not one line: %q", errb.String())
			}
			if tc.code == 0 && len(tc.stdout) > 0 && errb.Len() != 0 {
				t.Errorf("stderr not empty: %q", errb.String())
			}
		})
	}
}
