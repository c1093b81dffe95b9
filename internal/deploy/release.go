package deploy

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/msctl/msctl/internal/kube"
	"github.com/msctl/msctl/internal/render"
	"helm.sh/helm/v4/pkg/action"
	"helm.sh/helm/v4/pkg/chart/common"
	helmkube "helm.sh/helm/v4/pkg/kube"
	rcommon "helm.sh/helm/v4/pkg/release/common"
	releasev1 "helm.sh/helm/v4/pkg/release/v1"
	"helm.sh/helm/v4/pkg/storage/driver"
)

// Labels msctl puts on the release records it writes.
const (
	// DigestLabel holds a digest of the chart and values, so an identical
	// redeploy is recognised without a Helm round trip.
	DigestLabel = "msctl.dev/digest"
	// TimeoutLabel holds the seconds the writing run allowed the revision
	// to become ready: a pending revision older than that is abandoned.
	TimeoutLabel = "msctl.dev/timeout"
	// HolderLabel holds the writing run's lock nonce, so a run that took
	// the lock from a dead holder knows that holder's pending revision.
	HolderLabel = "msctl.dev/holder"
	// RevisionLabel is the revision msctl wrote the labels for. Helm copies
	// a release's labels into every later revision (the helm CLI's upgrade
	// and rollback too): only a revision whose number matches is msctl's,
	// and only then are its other labels its own.
	RevisionLabel = "msctl.dev/revision"
)

// writtenByMsctl reports whether msctl wrote this revision's labels.
func writtenByMsctl(rel *releasev1.Release) bool {
	return rel.Labels[RevisionLabel] == strconv.Itoa(rel.Version)
}

// maxHistory is how many revisions a release keeps.
const maxHistory = 10

// useHelmFieldManager makes Helm's SDK apply the chart's objects under the
// field manager the helm CLI uses, so a platform engineer's plain `helm
// rollback` or `helm upgrade` of an msctl release meets no conflicts. Helm
// offers only this package variable; left empty it would be named after the
// binary, "msctl".
var useHelmFieldManager = sync.OnceFunc(func() { helmkube.ManagedFieldsManager = helmFieldManager })

// helmFieldManager is the helm CLI's field manager: the binary's name.
const helmFieldManager = "helm"

// OperationInProgressError says a release is pending under another
// operation that may still be running: a helm CLI, a GitOps controller, or
// an msctl run within its deadline.
type OperationInProgressError struct {
	Release  string
	Revision int
	Status   string
	Since    time.Time
	Detail   string
}

func (e *OperationInProgressError) Error() string {
	return fmt.Sprintf("another operation is in progress on release %s since %s (revision %d is %s; %s)",
		e.Release, e.Since.UTC().Format(time.RFC3339), e.Revision, e.Status, e.Detail)
}

// releases are Helm release operations in the project's namespace. Each
// service gets its own: an action.Configuration is not safe for concurrent
// use. They share the cluster's RESTClientGetter, which caches discovery.
type releases struct {
	cfg *action.Configuration
	ns  string
	// holder is the lock's nonce, written into the rollbacks it makes.
	holder string
}

// releases returns Helm release operations; caps, when known, spares Helm
// rediscovering the whole API. With a lock, every write Helm makes (objects
// and release records) checks it first; without one they only read.
func (d *Deployer) releases(caps *common.Capabilities, lock *kube.Lock) (*releases, error) {
	cfg := action.NewConfiguration()
	cfg.SetLogger(d.Log.Handler())
	if err := cfg.Init(d.Cluster.Getter, d.Project.Namespace, "secret"); err != nil {
		return nil, fmt.Errorf("helm: %w", err)
	}
	if caps != nil {
		c := *caps
		cfg.Capabilities = &c
	}
	check, holder := errReadOnly, ""
	if lock != nil {
		check, holder = lock.Check, lock.Nonce()
	}
	cfg.KubeClient = &guardedKube{Interface: cfg.KubeClient, check: check, updated: d.keepHolds}
	cfg.Releases.Driver = &guardedDriver{Driver: cfg.Releases.Driver, check: check}
	return &releases{cfg: cfg, ns: d.Project.Namespace, holder: holder}, nil
}

// errReadOnly refuses writes through release operations opened without a
// lock: a programming error, caught rather than written unlocked.
func errReadOnly() error {
	return errors.New("internal error: a release write without the service's lock")
}

// upgrade installs or upgrades the service's release, unless the last
// deployed revision has the same chart and values. It returns the
// revision written (or kept) and how it ended.
func (r *releases) upgrade(ctx context.Context, name string, values map[string]any, opts Options) (int, State, error) {
	ch, err := render.ServiceChart()
	if err != nil {
		return 0, StateFailed, err
	}
	digest, err := releaseDigest(values)
	if err != nil {
		return 0, StateFailed, err
	}
	labels := map[string]string{
		DigestLabel:  digest,
		TimeoutLabel: strconv.Itoa(int(opts.Timeout.Seconds())),
		HolderLabel:  opts.Lock.Holder.Nonce,
	}
	wait := helmkube.HookOnlyStrategy
	if opts.Wait {
		wait = helmkube.StatusWatcherStrategy
	}
	last, err := r.last(name)
	if err != nil {
		return 0, StateFailed, err
	}
	next := 1
	if last != nil {
		next = last.Version + 1
	}
	labels[RevisionLabel] = strconv.Itoa(next)
	description := "msctl deploy " + opts.ImageTag
	if opts.Description != "" {
		description = opts.Description
	}
	if last == nil {
		in := action.NewInstall(r.cfg)
		in.ReleaseName, in.Namespace = name, r.ns
		in.ServerSideApply, in.ForceConflicts = true, true
		in.WaitStrategy, in.Timeout = wait, opts.Timeout
		in.Labels, in.Description = labels, description
		// The API server validates every field of a server-side apply;
		// Helm's own check would first download the OpenAPI schema.
		in.DisableOpenAPIValidation = true
		// render checked these values against the chart's schema already,
		// with the schema compiled once per process instead of per release.
		in.SkipSchemaValidation = true
		// Objects left by an install that died before recording a release.
		in.TakeOwnership = true
		rel, err := in.RunWithContext(ctx, ch, values)
		return versionOf(rel, 1), stateAfter(err), err
	}
	if last.Info.Status == rcommon.StatusDeployed && writtenByMsctl(last) && last.Labels[DigestLabel] == digest {
		return last.Version, StateUnchanged, nil
	}
	up := action.NewUpgrade(r.cfg)
	up.Namespace = r.ns
	up.ServerSideApply, up.ForceConflicts = "true", true
	up.WaitStrategy, up.Timeout = wait, opts.Timeout
	up.Labels, up.Description = labels, description
	up.MaxHistory = maxHistory
	up.DisableOpenAPIValidation = true
	up.SkipSchemaValidation = true
	rel, err := up.RunWithContext(ctx, name, ch, values)
	return versionOf(rel, last.Version+1), stateAfter(err), err
}

func stateAfter(err error) State {
	if err != nil {
		return StateFailed
	}
	return StateDeployed
}

func versionOf(rel any, fallback int) int {
	if r := asRelease(rel); r != nil {
		return r.Version
	}
	return fallback
}

// rollBackFailed undoes a failed revision: back to the newest good one
// below it, or, for a first install, away altogether.
func (r *releases) rollBackFailed(name string, failed int, timeout time.Duration) (string, error) {
	good, err := r.lastGood(name, failed)
	if err != nil {
		return "", err
	}
	if good == 0 {
		if err := r.uninstall(name, helmkube.HookOnlyStrategy, timeout); err != nil {
			return "", fmt.Errorf("removing the failed first install: %w", err)
		}
		return "removed the failed first install", nil
	}
	if err := r.rollback(name, good, timeout); err != nil {
		return "", fmt.Errorf("rolling back to revision %d: %w", good, err)
	}
	return fmt.Sprintf("rolled back to revision %d", good), nil
}

// lastGood is the newest revision below `below` (0: any) that was deployed
// at some point, or 0 when there is none.
func (r *releases) lastGood(name string, below int) (int, error) {
	hist, err := r.history(name)
	if err != nil {
		return 0, err
	}
	good := 0
	for _, h := range hist {
		if (below == 0 || h.Version < below) && h.Version > good &&
			(h.Info.Status == rcommon.StatusDeployed || h.Info.Status == rcommon.StatusSuperseded) {
			good = h.Version
		}
	}
	return good, nil
}

// history is a release's revisions, oldest first. Helm's storage lists
// release records by name, so v10 comes before v2 unless sorted.
func (r *releases) history(name string) ([]*releasev1.Release, error) {
	hist, err := r.cfg.Releases.History(name)
	if err != nil {
		return nil, err
	}
	var out []*releasev1.Release
	for _, h := range hist {
		if rel := asRelease(h); rel != nil {
			out = append(out, rel)
		}
	}
	sortRevisions(out)
	return out, nil
}

func sortRevisions(rels []*releasev1.Release) {
	slices.SortFunc(rels, func(a, b *releasev1.Release) int { return cmp.Compare(a.Version, b.Version) })
}

// rollback returns a release to revision with msctl's apply settings and
// waits until it is ready, within timeout.
func (r *releases) rollback(name string, revision int, timeout time.Duration) error {
	rb := action.NewRollback(r.cfg)
	rb.Version = revision
	rb.ServerSideApply = "true"
	rb.ForceConflicts = true
	rb.WaitStrategy = helmkube.StatusWatcherStrategy
	rb.Timeout = timeout
	rb.MaxHistory = maxHistory
	rb.Description = rollbackDescription(revision, r.holder, timeout)
	return rb.Run(name)
}

// A rollback revision carries the labels of the revision it returns to, so
// they do not say who wrote it; its description does, in this form, which
// `helm history` shows. A pending rollback left by a killed msctl is then
// recognised and mended like a pending upgrade.
const rollbackFormat = "msctl: rollback to %d by holder %s within %ds"

func rollbackDescription(revision int, holder string, timeout time.Duration) string {
	return fmt.Sprintf(rollbackFormat, revision, holder, int(timeout.Seconds()))
}

// writer is who wrote a pending revision, as far as its record says: the
// lock nonce and the timeout it allowed. ok is false for a revision msctl
// did not write.
func writer(rel *releasev1.Release) (holder string, timeout int, ok bool) {
	if writtenByMsctl(rel) {
		t, err := strconv.Atoi(rel.Labels[TimeoutLabel])
		return rel.Labels[HolderLabel], t, err == nil
	}
	if rel.Info == nil || rel.Info.Status != rcommon.StatusPendingRollback {
		return "", 0, false
	}
	var revision int
	if _, err := fmt.Sscanf(rel.Info.Description, rollbackFormat, &revision, &holder, &timeout); err != nil {
		return "", 0, false
	}
	return holder, timeout, true
}

// uninstall removes a release and its objects.
func (r *releases) uninstall(name string, wait helmkube.WaitStrategy, timeout time.Duration) error {
	un := action.NewUninstall(r.cfg)
	un.WaitStrategy = wait
	un.Timeout = timeout
	un.IgnoreNotFound = true
	_, err := un.Run(name)
	return err
}

// last returns the newest revision of a release, or nil.
func (r *releases) last(name string) (*releasev1.Release, error) {
	rel, err := r.cfg.Releases.Last(name)
	if errors.Is(err, driver.ErrReleaseNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading release %s: %w", name, err)
	}
	return asRelease(rel), nil
}

// recoverPending mends a release left pending by an msctl run that is gone:
// it rolls back to the last deployed revision, or removes a release that
// never got one. A pending revision is msctl's to mend only if msctl wrote
// it and either its run held the lock this run took from a dead holder, or
// its own deadline has passed; anything else (helm, Argo CD, Flux, a live
// msctl run that lost its lock) is an *OperationInProgressError.
func (r *releases) recoverPending(name string, lock *kube.Lock, rollbackTimeout time.Duration, now time.Time) (string, error) {
	last, err := r.last(name)
	if err != nil || last == nil || !last.Info.Status.IsPending() {
		return "", err
	}
	stuck := last.Info.Status
	nonce, gone := lock.TakenFrom()
	if busy := stillBusy(name, last, lock.Nonce(), nonce, gone, now); busy != nil {
		return "", busy
	}
	good, err := r.lastGood(name, last.Version)
	if err != nil {
		return "", err
	}
	if good == 0 {
		if err := r.uninstall(name, helmkube.HookOnlyStrategy, rollbackTimeout); err != nil {
			return "", fmt.Errorf("removing %s's pending first install: %w", name, err)
		}
		return fmt.Sprintf("revision %d was left %s by an interrupted run; removed it to install afresh", last.Version, stuck), nil
	}
	// Mark the stuck revision failed so Helm's rollback accepts to run.
	last.SetStatus(rcommon.StatusFailed, "interrupted; recovered by msctl")
	if err := r.cfg.Releases.Update(last); err != nil {
		return "", err
	}
	if err := r.rollback(name, good, rollbackTimeout); err != nil {
		return "", fmt.Errorf("rolling %s back from interrupted revision %d: %w", name, last.Version, err)
	}
	return fmt.Sprintf("revision %d was left %s by an interrupted run; rolled back to revision %d", last.Version, stuck, good), nil
}

// stillBusy says why a pending revision may still belong to a live
// operation, or nil when msctl may mend it. own is this run's lock nonce;
// takenFrom and gone are what the lock says of the holder it was taken from.
func stillBusy(name string, pending *releasev1.Release, own, takenFrom string, gone bool, now time.Time) *OperationInProgressError {
	busy := &OperationInProgressError{Release: name, Revision: pending.Version, Status: string(pending.Info.Status), Since: pending.Info.LastDeployed}
	holder, timeout, ok := writer(pending)
	if !ok {
		busy.Detail = "not written by msctl: let it finish, or mend it with helm"
		return busy
	}
	if gone && takenFrom != "" && holder == takenFrom {
		return nil // its run held the lock, and is gone
	}
	if own != "" && holder == own {
		return nil // this run's own earlier attempt, which failed
	}
	deadline := pending.Info.LastDeployed.Add(time.Duration(timeout) * time.Second)
	if now.Before(deadline) {
		busy.Detail = fmt.Sprintf("written by an msctl run that may go on until %s", deadline.UTC().Format(time.RFC3339))
		return busy
	}
	return nil
}

func asRelease(r any) *releasev1.Release {
	switch rel := r.(type) {
	case *releasev1.Release:
		return rel
	case releasev1.Release:
		return &rel
	}
	return nil
}

// releaseDigest identifies what a release would deploy: the chart and the
// values.
func releaseDigest(values map[string]any) (string, error) {
	chart, err := render.ChartDigest()
	if err != nil {
		return "", err
	}
	v, err := json.Marshal(values) // map keys are sorted: stable
	if err != nil {
		return "", err
	}
	h := sha256.New()
	h.Write([]byte(chart))
	h.Write(v)
	return hex.EncodeToString(h.Sum(nil))[:32], nil
}
