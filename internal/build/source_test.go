package build

import (
	"context"
	"net/http"
	"os/exec"
	"testing"
)

func TestWebURLIsTheSameHoweverTheRepositoryWasCloned(t *testing.T) {
	for remote, want := range map[string]string{
		"https://github.com/acme/shop.git":        "https://github.com/acme/shop",
		"https://user:token@github.com/acme/shop": "https://github.com/acme/shop",
		"git@github.com:acme/shop.git":            "https://github.com/acme/shop",
		"ssh://git@github.com/acme/shop.git":      "https://github.com/acme/shop",
		"/work/shop":                              "",
		"../shop":                                 "",
	} {
		if got := webURL(remote); got != want {
			t.Errorf("webURL(%q) = %q, want %q", remote, got, want)
		}
	}
}

func TestPlainHTTPOnlyToLoopback(t *testing.T) {
	var passed []string
	rt := loopbackOnlyHTTP{roundTripFunc(func(req *http.Request) (*http.Response, error) {
		passed = append(passed, req.URL.String())
		return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
	})}
	for url, allowed := range map[string]bool{
		"http://127.0.0.1:5000/v2/":          true,
		"http://[::1]:5000/v2/":              true,
		"http://localhost:5000/v2/":          true,
		"https://10.1.2.3:5000/v2/":          true,
		"http://10.1.2.3:5000/v2/":           false,
		"http://192.168.1.10/v2/":            false,
		"http://localhost.evil.com:5000/v2/": false,
		"http://127.0.0.1.nip.io:5000/v2/":   false,
		"http://registry.localhost:5000/v2/": false,
	} {
		passed = nil
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		_, err := rt.RoundTrip(req)
		if got := err == nil && len(passed) == 1; got != allowed {
			t.Errorf("%s: sent %v (err %v), want %v", url, got, err, allowed)
		}
	}
}

func TestLoopbackRegistryWithAPath(t *testing.T) {
	for reg, want := range map[string]bool{
		"127.0.0.1:5000/shop":       true,
		"localhost:5000/team/shop":  true,
		"[::1]:5000/shop":           true,
		"localhost/shop":            true,
		"ghcr.io/acme":              false,
		"10.0.0.1:5000/shop":        false,
		"localhost.evil.com/shop":   false,
		"127.0.0.1.nip.io:5000/127": false,
	} {
		if got := isLoopback(reg); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", reg, got, want)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

func TestVersionDoesNotDependOnTheClonesGitConfig(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{{"init", "-q"}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "--allow-empty", "-m", "x"}, {"config", "core.abbrev", "20"}} {
		if out, err := exec.Command("git", append([]string{"-C", dir}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	src, err := ReadSource(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if src.Version != src.Commit[:12] {
		t.Errorf("version %q, want the commit's first 12 digits %q", src.Version, src.Commit[:12])
	}
}
