// Package atomicfile writes files so that readers see the old content or the
// new, never a half-written file, even when msctl is killed mid-write, and
// so that a finished write survives a crash of the machine.
package atomicfile

import (
	"os"
	"path/filepath"
	"runtime"
)

// Write replaces path with data: a temporary file in the same directory is
// written, synced and renamed over it, and the directory is synced so the
// rename itself is on disk.
func Write(path string, data []byte, perm os.FileMode) error {
	return write(path, data, perm, SyncDir)
}

// write is Write with the directory sync passed in, for tests to observe.
func write(path string, data []byte, perm os.FileMode, syncDir func(string) error) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".msctl-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

// SyncDir flushes a directory's entries to disk: a rename or removal in it
// is only durable once the directory is synced. Call it once after several
// renames or removals in one directory. On Windows, where a directory
// cannot be opened for syncing, it does nothing.
func SyncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	if err := d.Sync(); err != nil {
		d.Close()
		return err
	}
	return d.Close()
}
