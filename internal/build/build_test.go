package build_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/msctl/msctl/internal/build"
	"github.com/msctl/msctl/internal/build/registrytest"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
)

// fixture is a two-service module small enough to compile in a second.
func fixture(t *testing.T) (string, *config.Project) {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"go.mod":        "module example.com/shop\n\ngo 1.22\n",
		"alpha/main.go": "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"alpha\") }\n",
		"beta/main.go":  "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"beta\") }\n",
	}
	for path, body := range files {
		writeFile(t, filepath.Join(dir, path), body)
	}
	return dir, &config.Project{Name: "shop", Services: []config.Service{{Name: "alpha", Path: "alpha"}, {Name: "beta", Path: "beta"}}}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

var fixedSource = &build.Source{Commit: strings.Repeat("ab", 20), Version: "v1.2.3", Epoch: time.Unix(1700000000, 0).UTC()}

// inProcessRegistry is go-containerregistry's registry: fast, but it does
// not check that a manifest's blobs exist, so the real one is tested too.
func inProcessRegistry(t *testing.T) string {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

func TestBuildPushesOnceThenReportsUnchanged(t *testing.T) {
	dir, p := fixture(t)
	reg := inProcessRegistry(t)
	opts := build.Options{Project: p, Dir: dir, Registry: reg, Source: fixedSource, CacheDir: t.TempDir()}
	first, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range first {
		if r.State != build.StatePushed || r.Image.Digest == "" || r.Image.Repository != reg+"/"+r.Service {
			t.Errorf("first build: %+v, want pushed by digest to %s/%s", r, reg, r.Service)
		}
		if strings.Join(r.Platforms, ",") != "linux/amd64,linux/arm64" {
			t.Errorf("%s platforms %v", r.Service, r.Platforms)
		}
		ref, err := name.ParseReference(r.Ref)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(ref)
		if err != nil {
			t.Fatalf("pull %s: %v", r.Ref, err)
		}
		m, _ := idx.IndexManifest()
		if len(m.Manifests) != 2 {
			t.Errorf("%s index has %d manifests, want 2", r.Service, len(m.Manifests))
		}
	}
	second, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range second {
		if r.State != build.StateUnchanged || r.Ref != first[i].Ref {
			t.Errorf("warm build: %s %s %s, want unchanged %s", r.Service, r.State, r.Ref, first[i].Ref)
		}
	}
	// deploy finds the digests of this commit's build in the record.
	if _, err := os.Stat(filepath.Join(dir, build.RecordPath)); err != nil {
		t.Fatalf("build record: %v", err)
	}
}

func TestBuildReportsACompileErrorAndStillPushesTheOthers(t *testing.T) {
	dir, p := fixture(t)
	writeFile(t, filepath.Join(dir, "beta/main.go"), "package main\n\nfunc main() { undefinedThing() }\n\nfunc other() { otherThing() }\n")
	var heard []string
	results, err := build.Build(context.Background(), build.Options{Project: p, Dir: dir, Registry: inProcessRegistry(t), Source: fixedSource, CacheDir: t.TempDir(),
		Progress: func(e build.Event) {
			if e.State == build.StateFailed {
				heard = append(heard, e.Message)
			}
		}})
	var failed *build.Failed
	if !errors.As(err, &failed) || errkind.Of(err) != errkind.Failure {
		t.Fatalf("err = %v, want *build.Failed", err)
	}
	// The one line a terminal shows is the compiler's error, not the
	// "# package" heading above it.
	if !strings.Contains(err.Error(), "beta: linux/amd64: beta/main.go:3:15: undefined: undefinedThing") {
		t.Errorf("error line %q, want the compiler's error", err)
	}
	// Progress, on stderr, carries all of it.
	if len(heard) != 1 || !strings.Contains(heard[0], "undefined: otherThing") {
		t.Errorf("progress heard %q, want the compiler's whole output", heard)
	}
	if results[0].State != build.StatePushed {
		t.Errorf("alpha: %+v, want pushed", results[0])
	}
	if results[1].State != build.StateFailed || !strings.Contains(results[1].Message, "undefined: undefinedThing") {
		t.Errorf("beta: %+v, want failed with the compiler's output", results[1])
	}
}

func TestBuildRefusesBadInputBeforeBuilding(t *testing.T) {
	dir, p := fixture(t)
	for _, tc := range []struct {
		name string
		opts build.Options
		want string
	}{
		{"unknown service", build.Options{Services: []string{"gamma"}, Registry: "localhost:1"}, `unknown service "gamma"`},
		{"no registry", build.Options{}, "no registry"},
		{"bad registry", build.Options{Registry: "Bad Host"}, `registry "Bad Host"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Project, tc.opts.Dir, tc.opts.Source, tc.opts.CacheDir = p, dir, fixedSource, t.TempDir()
			_, err := build.Build(context.Background(), tc.opts)
			if errkind.Of(err) != errkind.BadInput || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want bad input containing %q", err, tc.want)
			}
			if entries, _ := os.ReadDir(tc.opts.CacheDir); len(entries) != 0 {
				t.Errorf("cache written on bad input: %v", entries)
			}
		})
	}
	if _, err := build.ParsePlatforms("linux/amd64,windows/386"); errkind.Of(err) != errkind.BadInput || !strings.Contains(err.Error(), `"windows/386"`) {
		t.Errorf("ParsePlatforms: %v, want bad input naming windows/386", err)
	}
}

func TestBuildNamesTheRegistryThatRefuses(t *testing.T) {
	dir, p := fixture(t)
	srv := httptest.NewServer(nil) // 404 for everything, as a registry that is not one
	defer srv.Close()
	reg := strings.TrimPrefix(srv.URL, "http://")
	results, err := build.Build(context.Background(), build.Options{Project: p, Dir: dir, Registry: reg, Source: fixedSource, CacheDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "registry "+reg) {
		t.Fatalf("err = %v, want one naming registry %s", err, reg)
	}
	for _, r := range results {
		if r.State != build.StateFailed || r.Ref != "" {
			t.Errorf("%s reported %s %q; nothing was pushed", r.Service, r.State, r.Ref)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, build.RecordPath)); !os.IsNotExist(err) {
		t.Errorf("a build that pushed nothing wrote a record (%v)", err)
	}
}

func TestOCILayoutIsWrittenWholeOrNotAtAll(t *testing.T) {
	dir, p := fixture(t)
	out := filepath.Join(t.TempDir(), "layout")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := build.Build(ctx, build.Options{Project: p, Dir: dir, OCILayout: out, Source: fixedSource, CacheDir: t.TempDir()}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled build: err = %v", err)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Fatalf("cancelled build left %v", entries)
	}
	results, err := build.Build(context.Background(), build.Options{Project: p, Dir: dir, OCILayout: out, Source: fixedSource, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	var index struct {
		Manifests []struct {
			Digest      string
			Annotations map[string]string
		}
	}
	data, err := os.ReadFile(filepath.Join(out, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(data, &index)
	got := map[string]string{}
	for _, m := range index.Manifests {
		got[m.Annotations["org.opencontainers.image.ref.name"]] = m.Digest
	}
	for _, r := range results {
		if r.State != build.StateWritten || got[r.Service] != r.Image.Digest || got[r.Service+".sbom"] != r.SBOM {
			t.Errorf("%s: %+v; layout has %v", r.Service, r, got)
		}
	}
}

func TestDeployFindsTheDigestsOfThisCommitsBuild(t *testing.T) {
	dir, p := fixture(t)
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "x"}} {
		run(t, dir, "git", args...)
	}
	reg := inProcessRegistry(t)
	_, err := build.Recorded(context.Background(), dir, reg, []string{"alpha"})
	if errkind.Of(err) != errkind.BadInput || !strings.Contains(err.Error(), "no msctl build of alpha at commit") {
		t.Fatalf("before a build: %v, want bad input with a hint", err)
	}
	results, err := build.Build(context.Background(), build.Options{Project: p, Dir: dir, Registry: reg, Services: []string{"alpha"}, Platforms: []build.Platform{{OS: "linux", Arch: "amd64"}}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := build.Recorded(context.Background(), dir, reg, []string{"alpha"})
	if err != nil || got["alpha"] != results[0].Image {
		t.Fatalf("Recorded = %v, %v; want %v", got, err, results[0].Image)
	}
	if _, err := build.Recorded(context.Background(), dir, reg, []string{"alpha", "beta"}); err == nil || !strings.Contains(err.Error(), "no msctl build of beta") {
		t.Errorf("beta was not built: %v", err)
	}
	if _, err := build.Recorded(context.Background(), dir, "other.example.com", []string{"alpha"}); err == nil {
		t.Errorf("a build for another registry was taken")
	}
}

func TestWarmBuildSeesEveryChange(t *testing.T) {
	dir, p := fixture(t)
	opts := build.Options{Project: p, Dir: dir, Registry: inProcessRegistry(t), Source: fixedSource, CacheDir: t.TempDir(), Platforms: []build.Platform{{OS: "linux", Arch: "amd64"}}}
	digests := func() map[string]string {
		t.Helper()
		results, err := build.Build(context.Background(), opts)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, r := range results {
			out[r.Service] = r.Image.Digest
		}
		return out
	}
	before := digests()
	for _, change := range []struct {
		name, service, path, body string
	}{
		{"an edited file", "alpha", "alpha/main.go", "package main\n\nimport \"fmt\"\n\nfunc main() { fmt.Println(\"alpha 2\") }\n"},
		{"a new file", "beta", "beta/extra.go", "package main\n\nimport \"os\"\n\nfunc init() { os.Getenv(\"X\") }\n"},
		{"a new package imported", "alpha", "alpha/main.go", "package main\n\nimport \"example.com/shop/lib\"\n\nfunc main() { lib.Hello() }\n"},
	} {
		if change.name == "a new package imported" {
			writeFile(t, filepath.Join(dir, "lib/lib.go"), "package lib\n\nimport \"fmt\"\n\nfunc Hello() { fmt.Println(\"lib\") }\n")
		}
		writeFile(t, filepath.Join(dir, change.path), change.body)
		after := digests()
		for s, d := range after {
			if changed, want := d != before[s], s == change.service; changed != want {
				t.Errorf("%s in %s: %s changed %v, want %v", change.name, change.service, s, changed, want)
			}
		}
		before = after
	}
}

// buildDigests builds the fixture for linux/amd64 and returns each
// service's digest.
func buildDigests(t *testing.T, opts build.Options) map[string]string {
	t.Helper()
	results, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, r := range results {
		out[r.Service] = r.Image.Digest
	}
	return out
}

func TestWarmBuildSeesChangesOutsideGoFiles(t *testing.T) {
	dir, p := fixture(t)
	opts := build.Options{Project: p, Dir: dir, Registry: inProcessRegistry(t), Source: fixedSource, CacheDir: t.TempDir(), Platforms: []build.Platform{{OS: "linux", Arch: "amd64"}}}
	writeFile(t, filepath.Join(dir, "alpha/main.go"), "package main\n\nimport (\n\t\"embed\"\n\t\"fmt\"\n)\n\n//go:embed static\nvar static embed.FS\n\nfunc main() { fmt.Println(static.ReadDir(\"static/css\")) }\n")
	writeFile(t, filepath.Join(dir, "alpha/static/css/a.css"), "a{}\n")
	writeFile(t, filepath.Join(dir, "beta/later.go"), "//go:build ignore\n\npackage main\n\nfunc init() { println(\"later\") }\n")
	before := buildDigests(t, opts)
	for _, change := range []struct {
		name, service, path, body string
	}{
		// The go directive sets the binary's default GODEBUG settings.
		{"the go directive", "both", "go.mod", "module example.com/shop\n\ngo 1.21\n"},
		{"a file in an embedded subdirectory", "alpha", "alpha/static/css/b.css", "b{}\n"},
		{"an ignored file now built", "beta", "beta/later.go", "package main\n\nfunc init() { println(\"later\") }\n"},
	} {
		time.Sleep(10 * time.Millisecond) // a directory's new time must differ
		writeFile(t, filepath.Join(dir, change.path), change.body)
		after := buildDigests(t, opts)
		for s, d := range after {
			if changed, want := d != before[s], change.service == "both" || s == change.service; changed != want {
				t.Errorf("%s: %s changed %v, want %v", change.name, s, changed, want)
			}
		}
		before = after
	}
}

func TestTheBuildMachinesGoEnvironmentDoesNotLeakIn(t *testing.T) {
	dir, p := fixture(t)
	opts := build.Options{Project: p, Dir: dir, Registry: inProcessRegistry(t), Source: fixedSource, Platforms: []build.Platform{{OS: "linux", Arch: "amd64"}}}
	opts.CacheDir = t.TempDir()
	want := buildDigests(t, opts)
	for _, env := range []string{"GOAMD64=v3"} {
		k, v, _ := strings.Cut(env, "=")
		t.Setenv(k, v)
		opts.CacheDir = t.TempDir()
		if got := buildDigests(t, opts); got["alpha"] != want["alpha"] {
			t.Errorf("with %s: alpha %s, want %s as on any machine", env, got["alpha"], want["alpha"])
		}
	}
}

func TestDeployRefusesABuildOfUncommittedChanges(t *testing.T) {
	dir, p := fixture(t)
	for _, args := range [][]string{{"init", "-q"}, {"add", "."}, {"-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-q", "-m", "x"}} {
		run(t, dir, "git", args...)
	}
	opts := build.Options{Project: p, Dir: dir, Registry: inProcessRegistry(t), Services: []string{"alpha"}, Platforms: []build.Platform{{OS: "linux", Arch: "amd64"}}, CacheDir: t.TempDir()}
	// A file git does not track is still compiled in.
	extra := filepath.Join(dir, "alpha/extra.go")
	writeFile(t, extra, "package main\n\nfunc init() { println(\"not committed\") }\n")
	if _, err := build.Build(context.Background(), opts); err != nil {
		t.Fatal(err)
	}
	_, err := build.Recorded(context.Background(), dir, opts.Registry, []string{"alpha"})
	if errkind.Of(err) != errkind.BadInput || !strings.Contains(err.Error(), "uncommitted changes") {
		t.Fatalf("after a build with an untracked file: %v, want bad input naming the uncommitted changes", err)
	}
	os.Remove(extra)
	results, err := build.Build(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := build.Recorded(context.Background(), dir, opts.Registry, []string{"alpha"}); err != nil || got["alpha"] != results[0].Image {
		t.Fatalf("after a clean build: %v, %v; want %v", got, err, results[0].Image)
	}
}

func TestAServiceNamedTwiceIsBuiltOnce(t *testing.T) {
	dir, p := fixture(t)
	results, err := build.Build(context.Background(), build.Options{Project: p, Dir: dir, Registry: inProcessRegistry(t), Source: fixedSource, CacheDir: t.TempDir(),
		Services: []string{"alpha", "beta", "alpha"}, Platforms: []build.Platform{{OS: "linux", Arch: "amd64"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(results) != 2 || results[0].Service != "alpha" || results[1].Service != "beta" {
		t.Fatalf("results %+v, want alpha then beta, once each", results)
	}
}

func TestOCILayoutNeverReplacesOtherFiles(t *testing.T) {
	dir, p := fixture(t)
	out := t.TempDir()
	precious := filepath.Join(out, "precious.txt")
	writeFile(t, precious, "keep me\n")
	file := filepath.Join(t.TempDir(), "a-file")
	writeFile(t, file, "keep me too\n")
	for _, layout := range []string{out, file} {
		_, err := build.Build(context.Background(), build.Options{Project: p, Dir: dir, OCILayout: layout, Source: fixedSource, CacheDir: t.TempDir()})
		if errkind.Of(err) != errkind.BadInput || !strings.Contains(err.Error(), layout) {
			t.Errorf("--oci-layout %s: %v, want bad input naming it", layout, err)
		}
	}
	for _, f := range []string{precious, file} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
}

func TestATruncatedCacheEntryIsBuiltAgain(t *testing.T) {
	dir, p := fixture(t)
	opts := build.Options{Project: p, Dir: dir, Registry: inProcessRegistry(t), Source: fixedSource, CacheDir: t.TempDir(), Platforms: []build.Platform{{OS: "linux", Arch: "amd64"}}}
	want := buildDigests(t, opts)
	layers, _ := filepath.Glob(filepath.Join(opts.CacheDir, "*", "*.tar.gz"))
	if len(layers) != 3 {
		t.Fatalf("cache layers %v, want the base and two apps", layers)
	}
	for _, l := range layers {
		if err := os.Truncate(l, 10); err != nil {
			t.Fatal(err)
		}
	}
	opts.Registry = inProcessRegistry(t) // one that must be sent every blob
	if got := buildDigests(t, opts); got["alpha"] != want["alpha"] || got["beta"] != want["beta"] {
		t.Errorf("after truncating the cache: %v, want %v", got, want)
	}
}

func TestProgressIsHeardOneEventAtATime(t *testing.T) {
	dir, p := fixture(t)
	var events []string // no lock: Build must not call Progress at once
	_, err := build.Build(context.Background(), build.Options{Project: p, Dir: dir, Registry: inProcessRegistry(t), Source: fixedSource, CacheDir: t.TempDir(),
		Progress: func(e build.Event) { events = append(events, e.Service+" "+string(e.State)) }})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range events {
		count[e]++
	}
	for _, s := range []string{"alpha", "beta"} {
		if count[s+" compiling"] != 2 || count[s+" pushed"] != 1 {
			t.Errorf("%s: events %v, want compiling twice and pushed once", s, events)
		}
	}
}

func TestWarmBuildSeesAnEditedVendoredPackage(t *testing.T) {
	dir, p := fixture(t)
	writeFile(t, filepath.Join(dir, "go.mod"), "module example.com/shop\n\ngo 1.22\n\nrequire example.com/dep v1.0.0\n")
	writeFile(t, filepath.Join(dir, "vendor/modules.txt"), "# example.com/dep v1.0.0\n## explicit\nexample.com/dep\n")
	writeFile(t, filepath.Join(dir, "vendor/example.com/dep/dep.go"), "package dep\n\nfunc Name() string { return \"one\" }\n")
	writeFile(t, filepath.Join(dir, "alpha/main.go"), "package main\n\nimport \"example.com/dep\"\n\nfunc main() { println(dep.Name()) }\n")
	opts := build.Options{Project: p, Dir: dir, Registry: inProcessRegistry(t), Source: fixedSource, CacheDir: t.TempDir(), Platforms: []build.Platform{{OS: "linux", Arch: "amd64"}}}
	before := buildDigests(t, opts)
	writeFile(t, filepath.Join(dir, "vendor/example.com/dep/dep.go"), "package dep\n\nfunc Name() string { return \"two\" }\n")
	if after := buildDigests(t, opts); after["alpha"] == before["alpha"] || after["beta"] != before["beta"] {
		t.Errorf("after editing a vendored package: %v, was %v; want alpha alone changed", after, before)
	}
}

// TestARegistryWithAPath pushes to host/path on the real registry, the
// form every team's registry takes (ghcr.io/acme), and refuses a path
// that is not a repository prefix.
func TestARegistryWithAPath(t *testing.T) {
	dir, p := fixture(t)
	reg := registrytest.Start(t) + "/team/shop"
	results, err := build.Build(context.Background(), build.Options{Project: p, Dir: dir, Registry: reg, Source: fixedSource, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.State != build.StatePushed || r.Image.Repository != reg+"/"+r.Service {
			t.Fatalf("%+v, want pushed to %s/%s", r, reg, r.Service)
		}
		ref, err := name.ParseReference(r.Ref, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := remote.Index(ref); err != nil {
			t.Errorf("pull %s: %v", r.Ref, err)
		}
	}
	for _, bad := range []string{"127.0.0.1:5000/Team", "127.0.0.1:5000//shop", "127.0.0.1:5000/shop/"} {
		_, err := build.Build(context.Background(), build.Options{Project: p, Dir: dir, Registry: bad, Source: fixedSource, CacheDir: t.TempDir()})
		if errkind.Of(err) != errkind.BadInput || !strings.Contains(err.Error(), bad) {
			t.Errorf("registry %q: %v, want bad input naming it", bad, err)
		}
	}
}
