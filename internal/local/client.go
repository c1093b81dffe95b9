package local

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/routes"
)

// Client talks to the supervisor running in a run directory.
type Client struct {
	base   string
	token  string
	runDir string
	http   *http.Client
}

// Connect reads the supervisor's record in runDir. With no supervisor
// running there it fails as bad input.
func Connect(runDir string) (*Client, error) {
	r, err := readRecord(runDir)
	if err != nil {
		return nil, err
	}
	if !r.Supervisor.alive() {
		return nil, errkind.BadInputf("the supervisor of %s (pid %d) is gone; stop what it left with msctl down, then msctl up -d", runDir, r.Supervisor.PID)
	}
	token, err := os.ReadFile(paths(runDir).token())
	if err != nil {
		return nil, err
	}
	return &Client{base: r.Control, token: strings.TrimSpace(string(token)), runDir: runDir, http: &http.Client{}}, nil
}

// Status reports every service's processes and traffic.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var st Status
	return &st, c.do(ctx, http.MethodGet, "/v1/status", nil, &st)
}

// SetTraffic sets service's split between its stable and its canary.
func (c *Client) SetTraffic(ctx context.Context, service string, t routes.Traffic) error {
	return c.do(ctx, http.MethodPut, servicePath(service, "traffic"), t, nil)
}

// Stable is what service's stable process runs, its binary resolved.
func (c *Client) Stable(ctx context.Context, service string) (ProcessSpec, error) {
	var spec ProcessSpec
	return spec, c.do(ctx, http.MethodGet, servicePath(service, "stable"), nil, &spec)
}

// StartCanary starts a canary process of service from spec, on ports of
// its own, and makes it the gateway's canary backend; it returns once the
// canary is ready. Starting the canary that runs already does nothing.
func (c *Client) StartCanary(ctx context.Context, service string, spec ProcessSpec) error {
	return c.do(ctx, http.MethodPut, servicePath(service, "canary"), spec, nil)
}

// StopCanary sends all traffic to the stable and stops the canary; with
// no canary it does nothing.
func (c *Client) StopCanary(ctx context.Context, service string) error {
	return c.do(ctx, http.MethodDelete, servicePath(service, "canary"), nil, nil)
}

// Promote makes the canary process the stable without downtime and stops
// the old stable; with no canary it does nothing.
func (c *Client) Promote(ctx context.Context, service string) error {
	return c.do(ctx, http.MethodPost, servicePath(service, "promote"), nil, nil)
}

// BuildService builds service from srcDir into the run directory (see the
// function BuildService) and returns the binary's path.
func (c *Client) BuildService(ctx context.Context, service, srcDir string) (string, error) {
	return BuildService(ctx, c.runDir, service, srcDir)
}

func servicePath(service, what string) string {
	return "/v1/services/" + url.PathEscape(service) + "/" + what
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("local supervisor at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var e apiError
		if json.NewDecoder(resp.Body).Decode(&e) != nil || e.Error == "" {
			e.Error = "local supervisor: " + resp.Status
		}
		err := errors.New(e.Error)
		if e.BadInput {
			return errkind.BadInputf("%w", err)
		}
		return err
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
