// Package filelock holds advisory locks on files (flock), the local
// runtime's way to keep one writer at a time: the kernel releases a lock
// when its process dies, so a lock held by a killed process is free at
// once. It never deletes the lock files: a removed file would let two
// processes lock two different files of the same name.
package filelock

import (
	"errors"
	"os"
)

// ErrLocked says another open file description holds the lock.
var ErrLocked = errors.New("locked by another process")

// Lock is a held lock on a file, open for reading and writing so the
// holder can record who it is.
type Lock struct{ f *os.File }

// Acquire waits for an exclusive lock on path, creating the file.
func Acquire(path string) (*Lock, error) { return acquire(path, true) }

// TryAcquire takes an exclusive lock on path at once, or fails with
// ErrLocked.
func TryAcquire(path string) (*Lock, error) { return acquire(path, false) }

func acquire(path string, wait bool) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := lock(f, wait); err != nil {
		f.Close()
		return nil, err
	}
	return &Lock{f: f}, nil
}

// File is the locked file.
func (l *Lock) File() *os.File { return l.f }

// Release gives the lock up.
func (l *Lock) Release() error { return l.f.Close() }
