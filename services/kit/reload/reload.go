// Package reload keeps what a service read from files (the keys of a
// mounted Secret) current without a restart. Kubernetes updates a Secret
// volume by swapping a symlink, which no file event reliably reports, so a
// Watcher polls: it reads the files, and when their content differs from
// what it last saw it calls the file's Apply, which parses them again and
// swaps the result in atomically. A new content that does not load keeps
// the old value and is logged once, not on every poll.
//
// It only reads files; what a file means is the caller's business.
package reload

import (
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"time"
)

// File is one value that comes from files.
type File struct {
	// Name is what logs call it, such as AUTH_API_KEYS_FILE.
	Name string
	// Paths are the files it is read from.
	Paths []string
	// Apply reads Paths again and, if they load, puts the new value in
	// place; on an error the old value must stay.
	Apply func() error
}

type watched struct {
	File
	seen [sha256.Size]byte
}

// Watcher polls a set of Files.
type Watcher struct {
	files  []*watched
	logger *slog.Logger
}

// New records the files' current content, so a Watcher made before the
// values are first loaded reloads only what changes after.
func New(logger *slog.Logger, files ...File) *Watcher {
	w := &Watcher{logger: logger}
	for _, f := range files {
		w.files = append(w.files, &watched{File: f, seen: digest(f.Paths)})
	}
	return w
}

// Check reloads every file whose content changed since the last Check.
func (w *Watcher) Check() {
	for _, f := range w.files {
		d := digest(f.Paths)
		if d == f.seen {
			continue
		}
		f.seen = d
		if err := f.Apply(); err != nil {
			w.logger.Error("keys not reloaded: the new file does not load, the previous keys stay in use", "file", f.Name, "error", err)
			continue
		}
		w.logger.Info("keys reloaded", "file", f.Name)
	}
}

// Run checks every interval until ctx ends.
func (w *Watcher) Run(ctx context.Context, interval time.Duration) {
	if len(w.files) == 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.Check()
		}
	}
}

// digest sums the files' content; a file that cannot be read counts by
// its error, so a file that disappears and comes back is seen as changed.
func digest(paths []string) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			data = []byte("\x00error: " + err.Error())
		}
		h.Write([]byte(p))
		h.Write([]byte{0})
		h.Write(data)
		h.Write([]byte{0})
	}
	var d [sha256.Size]byte
	h.Sum(d[:0])
	return d
}
