package local

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// LogFile is the log of service's stable process in runDir (or of its
// canary), as the running supervisor recorded it or where it would be.
func LogFile(runDir, service string, role Role) (string, error) {
	path := paths(runDir).serviceLog(service, role)
	if r, err := readRecord(runDir); err == nil {
		for _, s := range r.Services {
			if s.Name != service {
				continue
			}
			if in := map[Role]*Instance{Stable: s.Stable, Canary: s.Canary}[role]; in != nil && in.Log != "" {
				path = in.Log
			}
		}
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("no %s log of %s in %s; has it run?", role, service, runDir)
		}
		return "", err
	}
	return path, nil
}

// pollInterval is how often followed logs are read for new lines.
const pollInterval = 200 * time.Millisecond

// Follow writes path's lines to w; with follow it then waits for new
// lines until ctx ends.
func Follow(ctx context.Context, path string, follow bool, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	for {
		if _, err := io.Copy(w, f); err != nil {
			return err
		}
		if !follow {
			return nil
		}
		// A log truncated for a new process (a restarted up, a new canary)
		// is followed from its start, not from past its end.
		if off, err := f.Seek(0, io.SeekCurrent); err == nil {
			if fi, err := f.Stat(); err == nil && fi.Size() < off {
				_, _ = f.Seek(0, io.SeekStart)
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(pollInterval):
		}
	}
}

// WatchLogs calls line for every line written to the services' logs in
// runDir from now on (and for files that appear later, from their start),
// with the file's service name ("payment", "payment.canary"), until ctx
// ends. It is how the foreground supervisor shows every service's output.
func WatchLogs(ctx context.Context, runDir string, line func(source, text string)) {
	type tail struct {
		f      *os.File
		r      *bufio.Reader
		source string
	}
	dir := paths(runDir).logs()
	tails := map[string]*tail{}
	defer func() {
		for _, t := range tails {
			t.f.Close()
		}
	}()
	for {
		names, _ := filepath.Glob(filepath.Join(dir, "*.log"))
		slices.Sort(names)
		for _, name := range names {
			if tails[name] != nil || filepath.Base(name) == "supervisor.log" {
				continue
			}
			f, err := os.Open(name)
			if err != nil {
				continue
			}
			tails[name] = &tail{f: f, r: bufio.NewReader(f), source: strings.TrimSuffix(filepath.Base(name), ".log")}
		}
		for _, t := range tails {
			// A log truncated for a new process is read from its start.
			if off, err := t.f.Seek(0, io.SeekCurrent); err == nil {
				if fi, err := t.f.Stat(); err == nil && fi.Size() < off {
					_, _ = t.f.Seek(0, io.SeekStart)
					t.r.Reset(t.f)
				}
			}
			for {
				s, err := t.r.ReadString('\n')
				if err != nil {
					// A partial line waits for its end: step back over it.
					if len(s) > 0 {
						_, _ = t.f.Seek(-int64(len(s)), io.SeekCurrent)
						t.r.Reset(t.f)
					}
					break
				}
				line(t.source, strings.TrimRight(s, "\r\n"))
			}
		}
		if ctx.Err() != nil {
			return // after one last pass, for the lines of stopping processes
		}
		select {
		case <-ctx.Done():
		case <-time.After(pollInterval):
		}
	}
}
