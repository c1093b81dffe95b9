package canary

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/filelock"
	"github.com/msctl/msctl/internal/kube"
)

// LocalLock is one local driver's hold on a service: an flock of
// RUNDIR/canary/SERVICE.lock for as long as it runs, the file naming the
// holder. The kernel frees it when the holder dies, so a rerun after
// kill -9 never waits for a lapse as a cluster Lease does.
type LocalLock struct {
	l        *filelock.Lock
	identity string
	released atomic.Bool
}

// localHolder is what a lock file says about its holder.
type localHolder struct {
	Holder string    `json:"holder"`
	PID    int       `json:"pid"`
	Since  time.Time `json:"since"`
}

// LocalLockHeldError says another local driver holds a service's lock.
type LocalLockHeldError struct {
	Service string
	// Holder is "" when the holder has not written its name yet.
	Holder string
	Since  time.Time
}

func (e *LocalLockHeldError) Error() string {
	if e.Holder == "" {
		return fmt.Sprintf("the canary of %s is locked by another msctl that is just starting", e.Service)
	}
	return fmt.Sprintf("the canary of %s is locked by %q since %s; it is freed when that process ends",
		e.Service, e.Holder, e.Since.UTC().Format(time.RFC3339))
}

// ErrorKind marks it for the exit code, as a held Lease is.
func (e *LocalLockHeldError) ErrorKind() errkind.Kind { return errkind.LockHeld }

// AcquireLocalLock takes path's lock for service under holder h, or fails
// at once with *LocalLockHeldError.
func AcquireLocalLock(path, service string, h kube.Holder, now time.Time) (*LocalLock, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	l, err := filelock.TryAcquire(path)
	if errors.Is(err, filelock.ErrLocked) {
		held := &LocalLockHeldError{Service: service}
		var who localHolder
		if b, rerr := os.ReadFile(path); rerr == nil && json.Unmarshal(b, &who) == nil {
			held.Holder, held.Since = who.Holder, who.Since
		}
		return nil, held
	}
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(localHolder{Holder: h.Identity(), PID: h.PID, Since: now})
	if err == nil {
		err = l.File().Truncate(0)
	}
	if err == nil {
		_, err = l.File().WriteAt(b, 0)
	}
	if err != nil {
		l.Release()
		return nil, fmt.Errorf("writing the holder into %s: %w", path, err)
	}
	return &LocalLock{l: l, identity: h.Identity()}, nil
}

// Check implements Lock: a local lock is held until released.
func (l *LocalLock) Check() error {
	if l.released.Load() {
		return errors.New("the canary's local lock was released")
	}
	return nil
}

// Holder implements Lock.
func (l *LocalLock) Holder() string { return l.identity }

// Release gives the lock up.
func (l *LocalLock) Release() {
	if l.released.CompareAndSwap(false, true) {
		_ = l.l.Release()
	}
}
