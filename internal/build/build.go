// Package build turns the project's services into OCI images and publishes
// them: a static Go binary per platform on a base layer msctl writes
// itself (a non-root user, /tmp, pinned CA roots), an index over the
// platforms, and an SPDX SBOM attached as a referrer. The same commit
// gives the same digests on any machine.
//
// It owns compiling (bounded by the cores, with a cache keyed by every
// input of the binary, so an unchanged service is neither linked nor
// pushed again), the image layout, pushing by digest, and the record of
// the last build per commit that deploy reads. It never pulls a base
// image, never needs a container daemon, and never prints; progress goes
// to Options.Progress.
package build

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/msctl/msctl/internal/atomicfile"
	"github.com/msctl/msctl/internal/config"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/render"
)

// cacheFormat changes whenever the cached layers would be written
// differently, so an old cache is never mistaken for a new one.
const cacheFormat = 2

// The variables of services/kit/buildinfo that carry a binary's version.
const (
	versionVar = "github.com/msctl/msctl/services/kit/buildinfo.version"
	commitVar  = "github.com/msctl/msctl/services/kit/buildinfo.commit"
)

// DefaultPlatforms are built when none are named.
var DefaultPlatforms = []Platform{{"linux", "amd64"}, {"linux", "arm64"}}

// Options say what to build and where it goes.
type Options struct {
	Project *config.Project
	// Dir is the project's directory: services[].path is relative to it,
	// and the build record is written under it.
	Dir string
	// Services to build; empty means all.
	Services  []string
	Platforms []Platform
	// Registry overrides the project's registry.
	Registry string
	// OCILayout, when set, writes an OCI image layout there instead of
	// pushing.
	OCILayout string
	// Source is the revision; nil reads it from Dir with git.
	Source *Source
	// CacheDir keeps built binaries' layers; default the user cache dir.
	CacheDir string
	// Parallel bounds compiles at once; default the number of cores.
	Parallel int
	// Remote tunes pushes (transport, auth); the default keychain and
	// plain HTTP for loopback registries are always applied.
	Remote []RemoteOption
	// Progress hears each service's steps, one call at a time; nil hears
	// nothing.
	Progress func(Event)
}

// State is where one service's build stands or how it ended.
type State string

// States of a service's build.
const (
	StateCompiling State = "compiling"
	StatePushing   State = "pushing"
	StatePushed    State = "pushed"
	StateUnchanged State = "unchanged"
	StateWritten   State = "written"
	StateFailed    State = "failed"
)

// Event is progress of one service.
type Event struct {
	Service string
	State   State
	// Message is one line, but for a service that did not compile: then
	// it is the compiler's whole output.
	Message string
}

// Result is how one service's build ended.
type Result struct {
	Service   string       `json:"service"`
	Platforms []string     `json:"platforms"`
	Image     imageref.Ref `json:"-"`
	// Ref is Image as a string, repo@sha256:...
	Ref   string `json:"image,omitempty"`
	State State  `json:"state"`
	// Size is the largest platform image's bytes (layers, config and
	// manifest, compressed as pushed); BinarySize its binary's.
	Size       int64  `json:"size,omitempty"`
	BinarySize int64  `json:"binarySize,omitempty"`
	Message    string `json:"message,omitempty"`
	// SBOM is the digest of the attached SPDX document.
	SBOM string `json:"sbom,omitempty"`
}

// Failed is returned when any service did not build or publish; Results
// says which and why, and the others' results stand.
type Failed struct{ Results []Result }

func (e *Failed) Error() string {
	var msg string
	for _, r := range e.Results {
		if r.State == StateFailed {
			if msg != "" {
				msg += "; "
			}
			msg += r.Service + ": " + firstLine(r.Message)
		}
	}
	return "build failed: " + msg
}

// ErrorKind is a failure: the input was valid, the build was not.
func (e *Failed) ErrorKind() errkind.Kind { return errkind.Failure }

func (o *Options) complete() error {
	if o.Project == nil {
		return errors.New("build: no project")
	}
	for _, s := range o.Services {
		if o.Project.Service(s) == nil {
			return errkind.BadInputf("unknown service %q (the project has: %s)", s, strings.Join(o.Project.ServiceNames(), ", "))
		}
	}
	if len(o.Services) == 0 {
		o.Services = o.Project.ServiceNames()
	}
	var once []string
	for _, s := range o.Services {
		if !slices.Contains(once, s) {
			once = append(once, s)
		}
	}
	o.Services = once
	if len(o.Platforms) == 0 {
		o.Platforms = DefaultPlatforms
	}
	if o.Registry == "" {
		o.Registry = o.Project.Registry
	}
	if o.Registry == "" && o.OCILayout == "" {
		return errkind.BadInputf("no registry: set registry in the project file, pass --registry, or write --oci-layout DIR")
	}
	if o.OCILayout != "" {
		if err := replaceableLayout(o.OCILayout); err != nil {
			return errkind.BadInputf("%w", err)
		}
	}
	abs, err := filepath.Abs(o.Dir)
	if err != nil {
		return err
	}
	o.Dir = abs
	if o.CacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return fmt.Errorf("build cache: %v", err)
		}
		o.CacheDir = filepath.Join(dir, "msctl", "build")
	}
	if o.Parallel <= 0 {
		o.Parallel = runtime.NumCPU()
	}
	if o.Progress == nil {
		o.Progress = func(Event) {}
	}
	// Services compile and push side by side; the caller hears one event
	// at a time.
	var mu sync.Mutex
	progress := o.Progress
	o.Progress = func(e Event) {
		mu.Lock()
		defer mu.Unlock()
		progress(e)
	}
	return nil
}

// replaceableLayout refuses a --oci-layout path that holds anything but
// an OCI layout: the layout is replaced whole, and what was there removed.
func replaceableLayout(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("--oci-layout %s: %v", dir, err)
	case len(entries) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return fmt.Errorf("--oci-layout %s: the directory is not empty and not an OCI layout; it would be replaced", dir)
	}
	return nil
}

// Repository is the image repository of service s in the given registry.
func Repository(p *config.Project, s *config.Service, registry string) string {
	q := *p
	if registry != "" {
		q.Registry = registry
	}
	return render.ServiceImage(&q, s, "_").Repository
}

// built is one service's images, before publishing.
type built struct {
	service string
	repo    string
	index   v1.ImageIndex
	sbom    v1.Image
	size    int64
	binSize int64
	err     error
}

// Build compiles, assembles and publishes the selected services. Bad
// input fails before anything is built; a service that does not compile
// or push is reported in its Result, the others still are, and the error
// is *Failed.
func Build(ctx context.Context, opts Options) ([]Result, error) {
	if err := opts.complete(); err != nil {
		return nil, err
	}
	var pub publisher
	if opts.OCILayout != "" {
		pub = &layoutPublisher{dir: opts.OCILayout}
	} else {
		rp, err := newRegistryPublisher(opts.Registry, opts.Remote)
		if err != nil {
			return nil, err
		}
		pub = rp
	}
	images, src, err := assemble(ctx, opts)
	if err != nil {
		return nil, err
	}
	results := pub.publish(ctx, images, opts.Progress)
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	for i := range results {
		results[i].Platforms = platformNames(opts.Platforms)
		results[i].Size, results[i].BinarySize = images[i].size, images[i].binSize
	}
	if _, ok := pub.(*registryPublisher); ok && src.Commit != "" {
		if err := record(opts.Dir, src, opts.Registry, results); err != nil {
			return results, err
		}
	}
	for _, r := range results {
		if r.State == StateFailed {
			return results, &Failed{Results: results}
		}
	}
	return results, nil
}

// assemble compiles every service for every platform (from the cache
// where it can) and puts each service's images together.
func assemble(ctx context.Context, opts Options) ([]built, Source, error) {
	var src Source
	if err := os.MkdirAll(opts.CacheDir, 0o755); err != nil {
		return nil, src, fmt.Errorf("build cache: %v", err)
	}
	tc, err := newToolchain(ctx, opts.Dir, opts.CacheDir)
	if err != nil {
		return nil, src, err
	}
	dirs := make([]string, len(opts.Services))
	for i, name := range opts.Services {
		dirs[i] = filepath.Clean(opts.Project.Service(name).Path)
	}
	// git and go list side by side: together they are a warm build's time.
	keys := make([]map[string]string, len(opts.Platforms))
	var wg sync.WaitGroup
	errs := make([]error, len(opts.Platforms)+1)
	for i, p := range opts.Platforms {
		wg.Go(func() { keys[i], errs[i] = tc.keys(ctx, p, dirs) })
	}
	if opts.Source != nil {
		src = *opts.Source
	} else {
		wg.Go(func() { src, errs[len(errs)-1] = ReadSource(ctx, opts.Dir) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, src, err
	}
	ldflags := map[string]string{versionVar: src.Version, commitVar: src.Commit}
	base, err := baseLayer(opts.CacheDir)
	if err != nil {
		return nil, src, err
	}

	type job struct {
		service, dir string
		platform     Platform
		key          string
		out          *cachedBinary
		err          error
	}
	var jobs []*job
	for i, name := range opts.Services {
		for j, p := range opts.Platforms {
			h := sha256.New()
			fmt.Fprintf(h, "%s\nservice %s\nepoch %d\n", keys[j][dirs[i]], name, src.Epoch.Unix())
			for _, k := range slices.Sorted(maps.Keys(ldflags)) {
				fmt.Fprintf(h, "ldflag %s=%s\n", k, ldflags[k])
			}
			jobs = append(jobs, &job{service: name, dir: dirs[i], platform: p, key: hex.EncodeToString(h.Sum(nil))})
		}
	}
	sem := make(chan struct{}, opts.Parallel)
	for _, j := range jobs {
		wg.Go(func() {
			if c, ok := lookupBinary(opts.CacheDir, j.key); ok {
				j.out = c
				return
			}
			sem <- struct{}{}
			defer func() { <-sem }()
			if ctx.Err() != nil {
				j.err = ctx.Err()
				return
			}
			opts.Progress(Event{Service: j.service, State: StateCompiling, Message: j.platform.String()})
			j.out, j.err = compileToCache(ctx, tc, opts.CacheDir, j.key, j.service, j.dir, j.platform, ldflags, src)
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil, src, ctx.Err()
	}

	var out []built
	for i, name := range opts.Services {
		b := built{service: name, repo: Repository(opts.Project, opts.Project.Service(name), opts.Registry)}
		imgs := map[Platform]v1.Image{}
		var bins []linked
		for _, j := range jobs[i*len(opts.Platforms) : (i+1)*len(opts.Platforms)] {
			if j.err != nil {
				b.err = fmt.Errorf("%s: %w", j.platform, j.err)
				break
			}
			img, err := platformImage(imageInfo{service: name, src: src}, j.platform, base, j.out.layer())
			if err != nil {
				return nil, src, err
			}
			imgs[j.platform] = img
			bins = append(bins, j.out.meta.Linked)
			size, err := imageSize(img)
			if err != nil {
				return nil, src, err
			}
			if size > b.size {
				b.size, b.binSize = size, j.out.meta.BinarySize
			}
		}
		if b.err == nil {
			b.index = imageIndex(imageInfo{service: name, src: src}, imgs, opts.Platforms)
			b.sbom, b.err = attachSBOM(name, b.index, src, bins)
		}
		out = append(out, b)
	}
	return out, src, nil
}

func attachSBOM(service string, idx v1.ImageIndex, src Source, bins []linked) (v1.Image, error) {
	digest, err := idx.Digest()
	if err != nil {
		return nil, err
	}
	size, err := idx.Size()
	if err != nil {
		return nil, err
	}
	mt, _ := idx.MediaType()
	doc, err := spdx(service, digest, src.Epoch, src.Version, bins)
	if err != nil {
		return nil, err
	}
	return newArtifact(SBOMMediaType, doc, v1.Descriptor{MediaType: mt, Digest: digest, Size: size})
}

func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	n := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		n += l.Size
	}
	return n, nil
}

// cachedBinary is one compiled binary's app layer in the cache.
type cachedBinary struct {
	dir  string
	meta binaryMeta
}

type binaryMeta struct {
	Layer      layerMeta `json:"layer"`
	BinarySize int64     `json:"binarySize"`
	Linked     linked    `json:"linked"`
}

func (c *cachedBinary) layer() v1.Layer {
	return &fileLayer{path: filepath.Join(c.dir, "app.tar.gz"), meta: c.meta.Layer}
}

func lookupBinary(cacheDir, key string) (*cachedBinary, bool) {
	c := &cachedBinary{dir: filepath.Join(cacheDir, key)}
	if !readMeta(filepath.Join(c.dir, "meta.json"), &c.meta) {
		return nil, false
	}
	if !complete(filepath.Join(c.dir, "app.tar.gz"), c.meta.Layer) {
		return nil, false
	}
	return c, true
}

// complete reports whether a cached layer file has the size its digests
// were taken at: the cache is written without fsync, so a crash can leave
// a short file behind a complete meta.json, which would push as a blob
// that does not match its digest on every build after.
func complete(path string, meta layerMeta) bool {
	st, err := os.Stat(path)
	return err == nil && st.Size() == meta.Size
}

// compileToCache builds one binary and its layer in a temporary directory
// and renames it into place, so the cache never holds half an entry.
func compileToCache(ctx context.Context, tc *toolchain, cacheDir, key, service, dir string, p Platform, ldflags map[string]string, src Source) (*cachedBinary, error) {
	tmp, err := os.MkdirTemp(cacheDir, ".tmp-"+key[:12]+"-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, service)
	if err := tc.compile(ctx, p, dir, bin, ldflags); err != nil {
		return nil, err
	}
	var meta binaryMeta
	meta.Linked.Main, meta.Linked.GoVersion, meta.Linked.Deps, err = linkedModules(bin)
	if err != nil {
		return nil, fmt.Errorf("read build info of %s: %v", service, err)
	}
	st, err := os.Stat(bin)
	if err != nil {
		return nil, err
	}
	meta.BinarySize = st.Size()
	if meta.Layer, err = writeLayer(filepath.Join(tmp, "app.tar.gz"), appEntries(service, bin), src.Epoch); err != nil {
		return nil, err
	}
	if err := os.Remove(bin); err != nil {
		return nil, err
	}
	data, _ := json.Marshal(meta)
	if err := os.WriteFile(filepath.Join(tmp, "meta.json"), data, 0o644); err != nil {
		return nil, err
	}
	final := filepath.Join(cacheDir, key)
	if err := os.Rename(tmp, final); err != nil {
		// Another build got there first with the same bytes.
		if c, ok := lookupBinary(cacheDir, key); ok {
			return c, nil
		}
		// Or a broken entry is in the way: move it aside, then drop it.
		broken := tmp + ".broken"
		if os.Rename(final, broken) != nil || os.Rename(tmp, final) != nil {
			return nil, err
		}
		os.RemoveAll(broken)
	}
	return &cachedBinary{dir: final, meta: meta}, nil
}

// baseLayer is the shared base, written once per cache; its content does
// not depend on the source, so its time is fixed and every commit and
// service shares one blob.
func baseLayer(cacheDir string) (v1.Layer, error) {
	sum := sha256.Sum256(caBundle())
	dir := filepath.Join(cacheDir, fmt.Sprintf("base-%d-%s", cacheFormat, hex.EncodeToString(sum[:8])))
	l := &fileLayer{path: filepath.Join(dir, "base.tar.gz")}
	if readMeta(filepath.Join(dir, "meta.json"), &l.meta) && complete(l.path, l.meta) {
		return l, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	meta, err := writeLayer(l.path, baseEntries(), baseTime)
	if err != nil {
		return nil, err
	}
	l.meta = meta
	data, _ := json.Marshal(meta)
	return l, atomicfile.Write(filepath.Join(dir, "meta.json"), data, 0o644)
}

func platformNames(ps []Platform) []string {
	var out []string
	for _, p := range ps {
		out = append(out, p.String())
	}
	return out
}
