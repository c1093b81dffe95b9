package testcluster

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// defaultCacheDir follows the Makefile's tool cache:
// ${XDG_CACHE_HOME:-$HOME/.cache}/msctl/testcluster.
func defaultCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the user cache dir for the test cluster binaries: %w", err)
	}
	return filepath.Join(base, "msctl", "testcluster"), nil
}

// cacheEntry returns root/key, calling fill to create it when it is missing.
//
// fill writes into a temporary sibling that is renamed into place only when
// it succeeded, so a build that is killed half way never leaves an entry
// that looks complete. A file lock serialises test packages that start at
// the same moment: the first one fills the entry, the others wait and reuse it.
func cacheEntry(ctx context.Context, root, key string, log io.Writer, fill func(ctx context.Context, dir string) error) (string, error) {
	final := filepath.Join(root, key)
	if isDir(final) {
		return final, nil
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return "", fmt.Errorf("create cache dir: %w", err)
	}
	unlock, err := lockFile(ctx, filepath.Join(root, key+".lock"), func() {
		fmt.Fprintf(log, "testcluster: waiting for another process to finish filling %s\n", final)
	})
	if err != nil {
		return "", err
	}
	defer unlock()
	if isDir(final) {
		return final, nil
	}
	// Nobody else holds the lock, so temporaries left by a killed build are ours to remove.
	stale, _ := filepath.Glob(filepath.Join(root, key+".tmp-*"))
	for _, s := range stale {
		_ = os.RemoveAll(s)
	}
	tmp, err := os.MkdirTemp(root, key+".tmp-")
	if err != nil {
		return "", fmt.Errorf("create cache dir: %w", err)
	}
	if err := fill(ctx, tmp); err != nil {
		_ = os.RemoveAll(tmp)
		return "", err
	}
	if err := os.Rename(tmp, final); err != nil {
		_ = os.RemoveAll(tmp)
		return "", fmt.Errorf("move %s into the cache: %w", key, err)
	}
	return final, nil
}

// lockFile takes an exclusive flock on path, polling so that ctx can end the
// wait; waiting is called once if the lock is held by someone else.
func lockFile(ctx context.Context, path string, waiting func()) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open cache lock: %w", err)
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			_ = f.Close()
			return nil, fmt.Errorf("lock %s: %w", path, err)
		}
		if waiting != nil {
			waiting()
			waiting = nil
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("wait for another process building into the cache (%s): %w", path, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}
