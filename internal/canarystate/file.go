package canarystate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"github.com/msctl/msctl/internal/atomicfile"
	"github.com/msctl/msctl/internal/filelock"
)

// FileStore keeps a service's state in Dir/SERVICE.json, the local
// runtime's counterpart of ConfigMapStore: the same State, plus a version
// counter that Save compares and bumps under an flock of a lock file beside
// it, so two processes never lose each other's update. The file is replaced
// atomically, so a reader never sees half a state and needs no lock.
type FileStore struct {
	Dir     string
	Service string
}

// Path is the file that holds the state.
func (f *FileStore) Path() string { return filepath.Join(f.Dir, f.Service+".json") }

// fileState is the file's content: the State's own fields with the
// version beside them.
type fileState struct {
	Version uint64 `json:"resourceVersion"`
	*State
}

// Load implements Store.
func (f *FileStore) Load(context.Context) (*State, string, error) {
	st, ver, err := f.read()
	if err != nil || st == nil {
		return nil, "", err
	}
	return st, strconv.FormatUint(ver, 10), nil
}

func (f *FileStore) read() (*State, uint64, error) {
	b, err := os.ReadFile(f.Path())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("reading the canary state of %s: %w", f.Service, err)
	}
	st, err := Decode(b)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", f.Path(), err)
	}
	var v fileState
	if err := json.Unmarshal(b, &v); err != nil || v.Version == 0 {
		return nil, 0, fmt.Errorf("%s: no resourceVersion: not written by msctl", f.Path())
	}
	return st, v.Version, nil
}

// Save implements Store.
func (f *FileStore) Save(_ context.Context, s *State, version string) (string, error) {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return "", fmt.Errorf("writing the canary state of %s: %w", f.Service, err)
	}
	l, err := filelock.Acquire(f.Path() + ".lock")
	if err != nil {
		return "", fmt.Errorf("writing the canary state of %s: %w", f.Service, err)
	}
	defer l.Release()
	cur, ver, err := f.read()
	if err != nil {
		return "", err
	}
	switch {
	case version == "" && cur != nil:
		return "", ErrConflict
	case version != "" && (cur == nil || version != strconv.FormatUint(ver, 10)):
		return "", ErrConflict
	}
	s.SchemaVersion = SchemaVersion
	b, err := json.Marshal(fileState{Version: ver + 1, State: s})
	if err != nil {
		return "", err
	}
	if err := atomicfile.Write(f.Path(), b, 0o644); err != nil {
		return "", fmt.Errorf("writing the canary state of %s: %w", f.Service, err)
	}
	return strconv.FormatUint(ver+1, 10), nil
}
