package build_test

import (
	"context"
	"debug/elf"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/msctl/msctl/internal/build"
	"github.com/msctl/msctl/internal/build/registrytest"
	"github.com/msctl/msctl/internal/config"
)

// TestImagesOnARealRegistry builds the bundled services from two fresh
// clones of this commit and pushes them to Debian's docker-registry; skopeo
// and umoci, which share no code with msctl, check what was pushed.
func TestImagesOnARealRegistry(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the four services for two platforms")
	}
	for _, tool := range []string{"skopeo", "umoci"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found: run hack/deps.sh", tool)
		}
	}
	reg := registrytest.Start(t)
	root := strings.TrimSpace(run(t, "", "git", "rev-parse", "--show-toplevel"))
	a, b := clone(t, root), clone(t, root)
	cacheB := t.TempDir()

	first := buildAt(t, a, reg, t.TempDir())
	for _, r := range first {
		if r.State != build.StatePushed {
			t.Fatalf("%s: %s %s, want pushed", r.Service, r.State, r.Message)
		}
	}
	// The same commit in another directory, with a cold cache of its own,
	// gives the same digests: the registry has them all already.
	second := buildAt(t, b, reg, cacheB)
	for i, r := range second {
		if r.State != build.StateUnchanged || r.Ref != first[i].Ref {
			t.Errorf("second clone: %s %s %s, want unchanged %s", r.Service, r.State, r.Ref, first[i].Ref)
		}
	}

	commit := strings.TrimSpace(run(t, a, "git", "rev-parse", "HEAD"))
	for _, r := range first {
		t.Run(r.Service, func(t *testing.T) { checkWithSkopeoAndUmoci(t, reg, r, commit) })
	}

	// One changed line in payment changes payment's digest and no other.
	writeFile(t, filepath.Join(b, "services/payment/probe.go"), "package main\n\nimport \"os\"\n\nfunc init() { os.Getenv(\"MSCTL_PROBE\") }\n")
	third := buildAt(t, b, reg, cacheB)
	for i, r := range third {
		changed := r.Ref != first[i].Ref
		if want := r.Service == "payment"; changed != want {
			t.Errorf("after changing payment: %s %s (changed %v, want %v)", r.Service, r.State, changed, want)
		}
	}
}

func buildAt(t *testing.T, dir, reg, cache string) []build.Result {
	t.Helper()
	loaded, err := config.Load(filepath.Join(dir, "msctl.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	results, err := build.Build(context.Background(), build.Options{Project: loaded.Project, Dir: dir, Registry: reg, CacheDir: cache})
	if err != nil {
		t.Fatalf("build in %s: %v", dir, err)
	}
	if len(results) != 4 {
		t.Fatalf("%d results, want 4", len(results))
	}
	return results
}

// clone checks this commit out into a fresh directory.
func clone(t *testing.T, root string) string {
	dir := filepath.Join(t.TempDir(), "src")
	head := strings.TrimSpace(run(t, root, "git", "rev-parse", "HEAD"))
	run(t, "", "git", "clone", "-q", "--no-checkout", root, dir)
	run(t, dir, "git", "checkout", "-q", head)
	return dir
}

func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr)
	}
	return string(out)
}

func skopeoJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := run(t, "", "skopeo", append([]string{"inspect", "--tls-verify=false"}, args...)...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		t.Fatalf("skopeo %v: %v\n%s", args, err, out)
	}
}

type descriptor struct {
	MediaType    string `json:"mediaType"`
	ArtifactType string `json:"artifactType"`
	Digest       string `json:"digest"`
	Platform     *struct {
		OS           string `json:"os"`
		Architecture string `json:"architecture"`
	} `json:"platform"`
}

type manifest struct {
	MediaType string       `json:"mediaType"`
	Manifests []descriptor `json:"manifests"`
	Config    descriptor   `json:"config"`
	Layers    []descriptor `json:"layers"`
	Subject   *descriptor  `json:"subject"`
}

func checkWithSkopeoAndUmoci(t *testing.T, reg string, r build.Result, commit string) {
	ref := "docker://" + r.Ref
	var index manifest
	skopeoJSON(t, &index, "--raw", ref)
	if index.MediaType != "application/vnd.oci.image.index.v1+json" || len(index.Manifests) != 2 {
		t.Fatalf("index: %+v, want an OCI index of 2", index)
	}
	for i, want := range []string{"amd64", "arm64"} {
		m := index.Manifests[i]
		if m.MediaType != "application/vnd.oci.image.manifest.v1+json" || m.Platform == nil || m.Platform.OS != "linux" || m.Platform.Architecture != want {
			t.Errorf("index entry %d: %+v, want an OCI manifest for linux/%s", i, m, want)
		}
		var img manifest
		skopeoJSON(t, &img, "--raw", "docker://"+r.Image.Repository+"@"+m.Digest)
		if img.Config.MediaType != "application/vnd.oci.image.config.v1+json" || len(img.Layers) != 2 {
			t.Errorf("%s manifest: %+v", want, img)
		}
		for _, l := range img.Layers {
			if l.MediaType != "application/vnd.oci.image.layer.v1.tar+gzip" {
				t.Errorf("%s layer media type %s", want, l.MediaType)
			}
		}
	}

	var cfg struct {
		Config struct {
			User       string
			Entrypoint []string
			WorkingDir string
			Labels     map[string]string
		} `json:"config"`
	}
	skopeoJSON(t, &cfg, "--config", "--override-arch", "amd64", "--override-os", "linux", ref)
	c := cfg.Config
	if c.User != "65532:65532" || strings.Join(c.Entrypoint, " ") != "/usr/local/bin/"+r.Service || c.WorkingDir != "/home/nonroot" {
		t.Errorf("config: %+v", c)
	}
	for k, want := range map[string]string{
		"org.opencontainers.image.title":    r.Service,
		"org.opencontainers.image.revision": commit,
	} {
		if c.Labels[k] != want {
			t.Errorf("label %s = %q, want %q", k, c.Labels[k], want)
		}
	}
	for _, k := range []string{"org.opencontainers.image.version", "org.opencontainers.image.created"} {
		if c.Labels[k] == "" {
			t.Errorf("label %s missing", k)
		}
	}

	// The SBOM is reachable through the referrers tag fallback: this
	// registry has no referrers API.
	var referrers manifest
	skopeoJSON(t, &referrers, "--raw", "docker://"+r.Image.Repository+":"+strings.Replace(r.Image.Digest, ":", "-", 1))
	if len(referrers.Manifests) != 1 || referrers.Manifests[0].ArtifactType != build.SBOMMediaType || referrers.Manifests[0].Digest != r.SBOM {
		t.Fatalf("referrers of %s: %+v, want the SBOM %s", r.Ref, referrers, r.SBOM)
	}
	var sbom manifest
	skopeoJSON(t, &sbom, "--raw", "docker://"+r.Image.Repository+"@"+r.SBOM)
	if sbom.Subject == nil || sbom.Subject.Digest != r.Image.Digest || len(sbom.Layers) != 1 {
		t.Fatalf("SBOM manifest: %+v", sbom)
	}
	resp, err := http.Get("http://" + reg + "/v2/" + r.Service + "/blobs/" + sbom.Layers[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	doc, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var spdx struct {
		SPDXVersion string `json:"spdxVersion"`
		Packages    []struct{ Name string }
	}
	if err := json.Unmarshal(doc, &spdx); err != nil || spdx.SPDXVersion != "SPDX-2.3" || len(spdx.Packages) < 5 {
		t.Errorf("SBOM blob: %v, %.200s", err, doc)
	}

	// skopeo verifies every digest as it copies; --all takes both platforms.
	dir := t.TempDir()
	run(t, "", "skopeo", "copy", "-q", "--all", "--src-tls-verify=false", ref, "oci:"+filepath.Join(dir, "all")+":"+r.Service)
	run(t, "", "skopeo", "copy", "-q", "--src-tls-verify=false", "--override-arch", "amd64", ref, "oci:"+filepath.Join(dir, "amd64")+":"+r.Service)
	bundle := filepath.Join(dir, "bundle")
	run(t, "", "umoci", "unpack", "--rootless", "--image", filepath.Join(dir, "amd64")+":"+r.Service, bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	bin := filepath.Join(rootfs, "usr/local/bin", r.Service)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatalf("unpacked binary: %v", err)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an interpreter: not static", bin)
		}
	}
	f.Close()
	if out := run(t, "", bin, "--version"); !strings.HasPrefix(out, r.Service+" ") || !strings.Contains(out, commit) {
		t.Errorf("%s --version = %q, want its name and commit %s", r.Service, out, commit)
	}
	passwd, _ := os.ReadFile(filepath.Join(rootfs, "etc/passwd"))
	if !strings.Contains(string(passwd), ":65532:65532:") {
		t.Errorf("/etc/passwd: %q", passwd)
	}
	if st, err := os.Stat(filepath.Join(rootfs, "tmp")); err != nil || st.Mode()&os.ModeSticky == 0 || st.Mode().Perm() != 0o777 {
		t.Errorf("/tmp: %v %v, want 1777", st.Mode(), err)
	}
	if ca, err := os.ReadFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt")); err != nil || strings.Count(string(ca), "BEGIN CERTIFICATE") < 100 {
		t.Errorf("CA bundle: %v, %d certificates", err, strings.Count(string(ca), "BEGIN CERTIFICATE"))
	}
}
