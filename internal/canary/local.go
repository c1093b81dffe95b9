package canary

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/analysis"
	"github.com/msctl/msctl/internal/atomicfile"
	"github.com/msctl/msctl/internal/canarystate"
	"github.com/msctl/msctl/internal/imageref"
	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/routes"
)

// The local ports: the state in a file of the run directory, traffic in
// the local gateway's routing table, the workloads as processes of the
// local supervisor, the metrics in its embedded Prometheus engine.

// Process is what a local workload runs: a binary and environment
// overrides on top of the service's own, with a label for people.
type Process struct {
	Binary   string
	Env      map[string]string
	Revision string
}

// Processes is what local canaries need of the local supervisor
// (internal/local's Client, through a thin adapter).
type Processes interface {
	SetTraffic(ctx context.Context, service string, t routes.Traffic) error
	// Stable is what service's stable process runs, its binary resolved.
	Stable(ctx context.Context, service string) (Process, error)
	// StartCanary starts service's canary process, ready; starting the one
	// that runs does nothing.
	StartCanary(ctx context.Context, service string, p Process) error
	// StopCanary stops it; with none it does nothing.
	StopCanary(ctx context.Context, service string) error
	// Promote makes the canary process the stable; with no canary it does
	// nothing.
	Promote(ctx context.Context, service string) error
}

// LocalImageRepository is the repository of service's local "images".
func LocalImageRepository(service string) string { return "local/" + service }

// LocalImage is the image a local process stands for: a digest over the
// binary's contents and its sorted environment overrides, so the stable's
// binary with FAULT_ERROR_RATE=0.2 is another image than the stable.
func LocalImage(service string, p Process) (imageref.Ref, error) {
	f, err := os.Open(p.Binary)
	if err != nil {
		return imageref.Ref{}, fmt.Errorf("the binary of %s: %w", service, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return imageref.Ref{}, fmt.Errorf("the binary of %s: %w", service, err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range p.Env {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range keys {
		fmt.Fprintf(h, "\x00%s=%s", k, p.Env[k])
	}
	return imageref.Ref{Repository: LocalImageRepository(service), Digest: "sha256:" + hex.EncodeToString(h.Sum(nil))}, nil
}

// localImages keeps what each local image runs, in RUNDIR/canary/images:
// a copy of its binary, so a later build of the same tree cannot change a
// canary under way, and its environment.
type localImages struct{ dir string }

type imageRecord struct {
	Env      map[string]string `json:"env,omitempty"`
	Revision string            `json:"revision,omitempty"`
}

func (li localImages) path(ref imageref.Ref) string {
	return filepath.Join(li.dir, strings.TrimPrefix(ref.Digest, "sha256:"))
}

// add records p as service's image and returns it.
func (li localImages) add(service string, p Process) (imageref.Ref, error) {
	ref, err := LocalImage(service, p)
	if err != nil {
		return ref, err
	}
	dir := li.path(ref)
	if _, err := os.Stat(filepath.Join(dir, "process.json")); err == nil {
		return ref, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return ref, err
	}
	if err := copyFile(p.Binary, filepath.Join(dir, "binary")); err != nil {
		return ref, fmt.Errorf("keeping the binary of %s: %w", service, err)
	}
	b, err := json.Marshal(imageRecord{Env: p.Env, Revision: p.Revision})
	if err != nil {
		return ref, err
	}
	// Written last: a record with a process.json is complete.
	return ref, atomicfile.Write(filepath.Join(dir, "process.json"), b, 0o644)
}

// process is what ref runs.
func (li localImages) process(ref imageref.Ref) (Process, error) {
	if ref.Digest == "" {
		return Process{}, fmt.Errorf("%s is not a local image (want %s@sha256:...)", ref, ref.Repository)
	}
	dir := li.path(ref)
	b, err := os.ReadFile(filepath.Join(dir, "process.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return Process{}, fmt.Errorf("no local build of %s in %s: start the canary again", ref, li.dir)
	}
	if err != nil {
		return Process{}, err
	}
	var r imageRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return Process{}, fmt.Errorf("%s: %w", filepath.Join(dir, "process.json"), err)
	}
	return Process{Binary: filepath.Join(dir, "binary"), Env: r.Env, Revision: r.Revision}, nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp := to + ".tmp"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, to)
}

// localTraffic sets the split in the local gateway.
type localTraffic struct {
	p       Processes
	service string
}

func (l *localTraffic) Set(ctx context.Context, t routes.Traffic) error {
	return l.p.SetTraffic(ctx, l.service, t)
}

// localReleases are a service's stable and canary processes. The stable's
// revision counts its promotions, in RUNDIR/canary/SERVICE.revision.
type localReleases struct {
	p        Processes
	service  string
	images   localImages
	revision string
}

func (l *localReleases) Stable(ctx context.Context) (imageref.Ref, int, error) {
	p, err := l.p.Stable(ctx, l.service)
	if err != nil {
		return imageref.Ref{}, 0, err
	}
	// Kept like a canary's image, so that an abort during a promotion can
	// bring this stable back.
	ref, err := l.images.add(l.service, p)
	if err != nil {
		return imageref.Ref{}, 0, err
	}
	rev, err := l.readRevision()
	return ref, rev, err
}

func (l *localReleases) DeployCanary(ctx context.Context, img imageref.Ref) error {
	p, err := l.images.process(img)
	if err != nil {
		return err
	}
	return l.p.StartCanary(ctx, l.service, p)
}

func (l *localReleases) RemoveCanary(ctx context.Context) error {
	return l.p.StopCanary(ctx, l.service)
}

// Promote is idempotent: a stable that already runs img was promoted by a
// driver killed before it could record so.
func (l *localReleases) Promote(ctx context.Context, img imageref.Ref) (int, error) {
	stable, rev, err := l.Stable(ctx)
	if err != nil {
		return 0, err
	}
	if stable.String() == img.String() {
		return rev, nil
	}
	// The canary process may be gone (msctl up restarted since): promote
	// what runs img, started again if need be.
	if err := l.DeployCanary(ctx, img); err != nil {
		return 0, err
	}
	if err := l.p.Promote(ctx, l.service); err != nil {
		return 0, err
	}
	if stable, _, err = l.Stable(ctx); err != nil {
		return 0, err
	}
	if stable.String() != img.String() {
		return 0, fmt.Errorf("the stable of %s runs %s after promotion, not %s", l.service, stable, img)
	}
	return rev + 1, atomicfile.Write(l.revision, []byte(strconv.Itoa(rev+1)), 0o644)
}

func (l *localReleases) readRevision() (int, error) {
	b, err := os.ReadFile(l.revision)
	if errors.Is(err, fs.ErrNotExist) {
		return 1, nil
	}
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// Local runs the canaries of a project's services on this machine, under
// the local supervisor of a run directory, analysed by its embedded
// Prometheus engine: the same Driver as Cluster, on local ports.
type Local struct {
	// RunDir is the run directory; canaries keep their state, locks and
	// builds in RunDir/canary.
	RunDir     string
	Processes  Processes
	Prometheus analysis.Querier
	// Namespace is the workload namespace the gateway's metrics carry.
	Namespace string
	PlanFor   func(service string) (Plan, error)
	Events    func(Event)
	Tick      time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func (l *Local) dir() string { return filepath.Join(l.RunDir, "canary") }

// Store is service's canary state.
func (l *Local) Store(service string) canarystate.Store {
	return &canarystate.FileStore{Dir: l.dir(), Service: service}
}

// Image records p as an image of service and returns it: what RunOptions
// and ports know a local build by.
func (l *Local) Image(service string, p Process) (imageref.Ref, error) {
	return localImages{filepath.Join(l.dir(), "images")}.add(service, p)
}

// Lock takes service's lock for holder, or fails at once with
// *LocalLockHeldError.
func (l *Local) Lock(service string, holder kube.Holder) (*LocalLock, error) {
	return AcquireLocalLock(filepath.Join(l.dir(), service+".lock"), service, holder, l.now())
}

func (l *Local) now() time.Time {
	if l.Now == nil {
		return time.Now()
	}
	return l.Now()
}

// LocalPorts wires a driver of service to the local runtime l, under lock.
func LocalPorts(drv *Driver, l *Local, lock *LocalLock) {
	drv.Store = l.Store(drv.Service)
	drv.Traffic = &localTraffic{p: l.Processes, service: drv.Service}
	drv.Releases = &localReleases{p: l.Processes, service: drv.Service,
		images: localImages{filepath.Join(l.dir(), "images")}, revision: filepath.Join(l.dir(), drv.Service+".revision")}
	drv.Lock = lock
}

func (l *Local) driver(service string, lock *LocalLock) *Driver {
	plan, noPlan := l.PlanFor(service)
	drv := &Driver{
		Service: service, Plan: plan, NoPlan: noPlan, Events: l.Events, Tick: l.Tick, Now: l.Now,
		Analyzer: &analysis.Analyzer{Querier: l.Prometheus},
		Target: analysis.Target{Namespace: l.Namespace, Service: service,
			Canary: service + "-canary", Stable: service},
	}
	LocalPorts(drv, l, lock)
	return drv
}

// Run takes the service's local lock and drives its canary (see
// Driver.Run). A second driver fails at once with *LocalLockHeldError.
func (l *Local) Run(ctx context.Context, service string, o RunOptions, holder kube.Holder) (*canarystate.State, error) {
	lock, err := l.Lock(service, holder)
	if err != nil {
		return nil, err
	}
	return l.drive(ctx, service, lock, o)
}

func (l *Local) drive(ctx context.Context, service string, lock *LocalLock, o RunOptions) (*canarystate.State, error) {
	defer lock.Release()
	return l.driver(service, lock).Run(ctx, o)
}

// Act asks the service's running local canary to promote, pause, resume or
// abort, as Cluster.Act does.
func (l *Local) Act(ctx context.Context, service string, action canarystate.Action, full bool, holder kube.Holder) (*canarystate.State, error) {
	var lock *LocalLock
	return actor{
		store: l.Store(service), by: holder.Name, now: l.now(), tick: tickOr(l.Tick),
		lock: func() (string, error) {
			var err error
			lock, err = l.Lock(service, holder)
			var held *LocalLockHeldError
			if errors.As(err, &held) {
				return cmp.Or(held.Holder, "another msctl"), nil
			}
			return "", err
		},
		drive:   func(o RunOptions) (*canarystate.State, error) { return l.drive(ctx, service, lock, o) },
		release: func() { lock.Release() },
	}.act(ctx, service, action, full)
}
