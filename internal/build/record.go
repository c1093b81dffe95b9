package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gofrs/flock"
	"github.com/msctl/msctl/internal/atomicfile"
	"github.com/msctl/msctl/internal/errkind"
	"github.com/msctl/msctl/internal/imageref"
)

// RecordPath is where a project keeps its build record, relative to its
// directory; it is local state, not for version control.
const RecordPath = ".msctl/builds.json"

// keepCommits bounds the record: deploy only asks for the current commit.
const keepCommits = 20

// Record is the images the last builds of one commit pushed.
type Record struct {
	Commit string `json:"commit"`
	// Dirty is set when a build was made from uncommitted changes.
	Dirty    bool              `json:"dirty,omitempty"`
	Registry string            `json:"registry"`
	Images   map[string]string `json:"images"`
}

type recordFile struct {
	// Builds are newest first.
	Builds []Record `json:"builds"`
}

func readRecords(dir string) (recordFile, error) {
	var f recordFile
	data, err := os.ReadFile(filepath.Join(dir, RecordPath))
	if errors.Is(err, os.ErrNotExist) {
		return f, nil
	}
	if err != nil {
		return f, err
	}
	if err := json.Unmarshal(data, &f); err != nil {
		return f, fmt.Errorf("%s: %v", filepath.Join(dir, RecordPath), err)
	}
	return f, nil
}

// record adds the pushed and unchanged images of a build to the commit's
// entry, keeping the other services' entries from earlier builds.
func record(dir string, src Source, registry string, results []Result) error {
	if !slices.ContainsFunc(results, func(r Result) bool { return r.State == StatePushed || r.State == StateUnchanged }) {
		return nil
	}
	path := filepath.Join(dir, RecordPath)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	// Two builds at once each read, merge and write the record; the lock
	// keeps one from dropping the other's images.
	lock := flock.New(path + ".lock")
	if err := lock.Lock(); err != nil {
		return fmt.Errorf("lock %s: %v", path, err)
	}
	defer lock.Unlock()
	f, err := readRecords(dir)
	if err != nil {
		return err
	}
	rec := Record{Commit: src.Commit, Registry: registry, Images: map[string]string{}}
	if i := slices.IndexFunc(f.Builds, func(r Record) bool { return r.Commit == src.Commit && r.Registry == registry }); i >= 0 {
		// Images of the commit and of uncommitted changes never share
		// an entry: a clean build replaces a dirty one's, and back.
		if f.Builds[i].Dirty == src.Dirty {
			rec = f.Builds[i]
		}
		f.Builds = slices.Delete(f.Builds, i, i+1)
	}
	rec.Dirty = src.Dirty
	for _, r := range results {
		if r.State == StatePushed || r.State == StateUnchanged {
			rec.Images[r.Service] = r.Ref
		}
	}
	f.Builds = append([]Record{rec}, f.Builds...)
	if len(f.Builds) > keepCommits {
		f.Builds = f.Builds[:keepCommits]
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.Write(path, append(data, '\n'), 0o644)
}

// Recorded returns the images the last build of the current commit in dir
// pushed to registry, for the services named. It fails with bad input,
// and a hint, when one has not been built for this commit.
func Recorded(ctx context.Context, dir, registry string, services []string) (map[string]imageref.Ref, error) {
	commit, err := git(ctx, dir, "rev-parse", "HEAD")
	if err != nil {
		return nil, errkind.BadInputf("no image given and no commit to look a build up by (%s): pass --tag, --image or --build", firstLine(err.Error()))
	}
	f, err := readRecords(dir)
	if err != nil {
		return nil, err
	}
	var rec Record
	for _, r := range f.Builds {
		if r.Commit == commit && r.Registry == registry {
			rec = r
			break
		}
	}
	if rec.Dirty {
		return nil, errkind.BadInputf("the last msctl build at commit %.12s was of uncommitted changes, not the commit: commit and build again, or pass --build, --tag or --image", commit)
	}
	out := map[string]imageref.Ref{}
	var missing []string
	for _, s := range services {
		ref, err := imageref.Parse(rec.Images[s])
		if err != nil || ref.Digest == "" {
			missing = append(missing, s)
			continue
		}
		out[s] = ref
	}
	if len(missing) > 0 {
		return nil, errkind.BadInputf("no msctl build of %s at commit %.12s for registry %s: run msctl build, or pass --build, --tag or --image", strings.Join(missing, ", "), commit, registry)
	}
	return out, nil
}
