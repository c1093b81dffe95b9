package build

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/imageref"
)

// RemoteOption tunes go-containerregistry's remote calls.
type RemoteOption = remote.Option

// baseTime is the base layer's file time (see baseLayer).
var baseTime = time.Unix(0, 0).UTC()

type publisher interface {
	// publish returns a result per image, in order.
	publish(ctx context.Context, images []built, progress func(Event)) []Result
}

// failedResult reports a service that did not build.
func failedResult(b built) Result {
	return Result{Service: b.service, State: StateFailed, Message: b.err.Error()}
}

// registryPublisher pushes by digest to one registry.
type registryPublisher struct {
	registry string
	opts     []name.Option
	remote   []remote.Option
}

func newRegistryPublisher(registry string, extra []RemoteOption) (*registryPublisher, error) {
	p := &registryPublisher{registry: registry}
	if isLoopback(registry) {
		p.opts = append(p.opts, name.Insecure)
	}
	// A registry is a host with an optional path (ghcr.io/acme): the
	// host must be an authority, the whole a repository prefix.
	host, path, _ := strings.Cut(registry, "/")
	if _, err := name.NewRegistry(host, p.opts...); err != nil {
		return nil, errkind.BadInputf("registry %q: host %q: %w", registry, host, err)
	}
	if slices.Contains(strings.Split(path, "/"), "") && strings.Contains(registry, "/") {
		return nil, errkind.BadInputf("registry %q: the path has an empty component", registry)
	}
	if _, err := name.NewRepository(registry+"/service", p.opts...); err != nil {
		return nil, errkind.BadInputf("registry %q: path: %w", registry, err)
	}
	p.remote = append([]remote.Option{
		remote.WithAuthFromKeychain(authn.DefaultKeychain),
		remote.WithTransport(loopbackOnlyHTTP{remote.DefaultTransport}),
	}, extra...)
	return p, nil
}

// loopbackOnlyHTTP refuses plain HTTP to any host but this machine.
// go-containerregistry falls back to HTTP on its own for private
// (RFC 1918) addresses and *.localhost names, where credentials would
// cross the network in the clear.
type loopbackOnlyHTTP struct{ next http.RoundTripper }

func (t loopbackOnlyHTTP) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "https" && !isLoopback(req.URL.Host) {
		return nil, fmt.Errorf("refusing plain HTTP to %s: only a registry on localhost or a loopback address is spoken to without TLS", req.URL.Host)
	}
	return t.next.RoundTrip(req)
}

// isLoopback says whether a registry (host, optional port and path) is
// this machine, the one case where plain HTTP is expected.
func isLoopback(registry string) bool {
	host, _, _ := strings.Cut(registry, "/")
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}

func (p *registryPublisher) publish(ctx context.Context, images []built, progress func(Event)) []Result {
	results := make([]Result, len(images))
	var wg sync.WaitGroup
	for i, b := range images {
		if b.err != nil {
			results[i] = failedResult(b)
			// All of the compiler's output: stderr is where a user at a
			// terminal reads it.
			progress(Event{Service: b.service, State: StateFailed, Message: b.err.Error()})
			continue
		}
		wg.Go(func() {
			results[i] = p.push(ctx, b, progress)
			progress(Event{Service: b.service, State: results[i].State, Message: firstLine(results[i].Message)})
		})
	}
	wg.Wait()
	return results
}

// push writes one service's index and SBOM unless the registry has both,
// and reports pushed only once both are written.
func (p *registryPublisher) push(ctx context.Context, b built, progress func(Event)) Result {
	r := Result{Service: b.service}
	digest, err := b.index.Digest()
	if err != nil {
		return failed(r, err)
	}
	sbomDigest, err := b.sbom.Digest()
	if err != nil {
		return failed(r, err)
	}
	r.Image = imageref.Ref{Repository: b.repo, Digest: digest.String()}
	r.Ref, r.SBOM = r.Image.String(), sbomDigest.String()
	repo, err := name.NewRepository(b.repo, p.opts...)
	if err != nil {
		return failed(r, errkind.BadInputf("repository %q: %w", b.repo, err))
	}
	ropts := append([]remote.Option{remote.WithContext(ctx)}, p.remote...)
	have := func(d v1.Hash) (bool, error) {
		_, err := remote.Head(repo.Digest(d.String()), ropts...)
		var terr *transport.Error
		if errors.As(err, &terr) && terr.StatusCode == http.StatusNotFound {
			return false, nil
		}
		return err == nil, err
	}
	hasIndex, err := have(digest)
	if err != nil {
		return failed(r, p.describe(err))
	}
	hasSBOM, err := have(sbomDigest)
	if err != nil {
		return failed(r, p.describe(err))
	}
	if hasIndex && hasSBOM {
		r.State = StateUnchanged
		return r
	}
	progress(Event{Service: b.service, State: StatePushing, Message: r.Ref})
	if !hasIndex {
		if err := remote.WriteIndex(repo.Digest(digest.String()), b.index, ropts...); err != nil {
			return failed(r, p.describe(err))
		}
	}
	if err := remote.Write(repo.Digest(sbomDigest.String()), b.sbom, ropts...); err != nil {
		return failed(r, p.describe(fmt.Errorf("SBOM: %w", err)))
	}
	r.State = StatePushed
	return r
}

// describe makes a registry failure one line naming the registry and, if
// it answered, the HTTP status.
func (p *registryPublisher) describe(err error) error {
	if errors.Is(err, context.Canceled) {
		return err
	}
	var terr *transport.Error
	if errors.As(err, &terr) {
		msg := http.StatusText(terr.StatusCode)
		if len(terr.Errors) > 0 {
			msg = terr.Errors[0].Message
		}
		return fmt.Errorf("registry %s answered HTTP %d: %s", p.registry, terr.StatusCode, msg)
	}
	// go-containerregistry tries https, then http: the last dial failure
	// says it without repeating the URL twice.
	var op *net.OpError
	if errors.As(err, &op) {
		return fmt.Errorf("registry %s: %v", p.registry, op)
	}
	return fmt.Errorf("registry %s: %s", p.registry, firstLine(err.Error()))
}

func failed(r Result, err error) Result {
	r.State, r.Message = StateFailed, err.Error()
	r.Image, r.Ref = imageref.Ref{}, ""
	return r
}

// layoutPublisher writes every image into one OCI layout, each index
// named by its service (org.opencontainers.image.ref.name). It writes a
// new layout beside dir and renames it into place, so an interrupted
// build leaves the old layout or none, never half of one.
type layoutPublisher struct{ dir string }

func (p *layoutPublisher) publish(ctx context.Context, images []built, progress func(Event)) []Result {
	results := make([]Result, len(images))
	fail := func(err error) []Result {
		for i, b := range images {
			results[i] = Result{Service: b.service, State: StateFailed, Message: err.Error()}
			if b.err != nil {
				results[i].Message = b.err.Error()
			}
		}
		return results
	}
	parent := filepath.Dir(filepath.Clean(p.dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fail(err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(p.dir)+".tmp-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	lp, err := layout.Write(tmp, empty.Index)
	if err != nil {
		return fail(err)
	}
	for i, b := range images {
		if b.err != nil {
			results[i] = failedResult(b)
			continue
		}
		if ctx.Err() != nil {
			return fail(ctx.Err())
		}
		digest, _ := b.index.Digest()
		sbomDigest, _ := b.sbom.Digest()
		err := lp.AppendIndex(b.index, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": b.service}))
		if err == nil {
			err = lp.AppendImage(b.sbom, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": b.service + ".sbom"}))
		}
		if err != nil {
			return fail(err)
		}
		ref := imageref.Ref{Repository: b.repo, Digest: digest.String()}
		results[i] = Result{Service: b.service, Image: ref, Ref: ref.String(), SBOM: sbomDigest.String(), State: StateWritten}
	}
	if ctx.Err() != nil {
		return fail(ctx.Err())
	}
	old := ""
	if _, err := os.Stat(p.dir); err == nil {
		old = tmp + ".old"
		if err := os.Rename(p.dir, old); err != nil {
			return fail(err)
		}
	}
	if err := os.Rename(tmp, p.dir); err != nil {
		return fail(err)
	}
	if old != "" {
		os.RemoveAll(old)
	}
	for _, r := range results {
		progress(Event{Service: r.Service, State: r.State, Message: r.Message})
	}
	return results
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return line
}
