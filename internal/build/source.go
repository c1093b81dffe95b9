package build

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/internal/errkind"
)

// Source is the revision a build is made from.
type Source struct {
	// Commit is the full commit hash; "" outside a git work tree.
	Commit string
	// Dirty is set when the work tree differs from Commit.
	Dirty bool
	// Version is `git describe --tags --always`: the nearest tag, or the
	// short commit. The hash is always 12 digits: git's own length grows
	// with a clone's object count and follows core.abbrev, so two clones
	// of one commit would build different binaries.
	Version string
	// Epoch is every timestamp in the images: SOURCE_DATE_EPOCH when set,
	// else the commit's time, so one commit builds to one digest anywhere.
	Epoch time.Time
	// URL is the origin remote as https://host/path, whichever way it was
	// cloned, so the source label does not depend on it; "" for a local
	// or missing remote.
	URL string
}

// ReadSource describes the git work tree at dir. Outside a work tree the
// commit is empty and the epoch is SOURCE_DATE_EPOCH or the Unix epoch.
func ReadSource(ctx context.Context, dir string) (Source, error) {
	src := Source{Version: "dev", Epoch: time.Unix(0, 0).UTC()}
	if commit, err := git(ctx, dir, "rev-parse", "HEAD"); err == nil {
		src.Commit = commit
		if v, err := git(ctx, dir, "describe", "--tags", "--always", "--abbrev=12"); err == nil {
			src.Version = v
		}
		// Untracked files count: go build compiles a new .go file
		// whether git knows it or not. The build record itself does not.
		if st, err := git(ctx, dir, "status", "--porcelain", "--untracked-files=normal", "--", ":/", ":(exclude)"+filepath.Dir(RecordPath)); err == nil {
			src.Dirty = st != ""
		}
		if remote, err := git(ctx, dir, "config", "--get", "remote.origin.url"); err == nil {
			src.URL = webURL(remote)
		}
		if ct, err := git(ctx, dir, "log", "-1", "--format=%ct"); err == nil {
			if sec, err := strconv.ParseInt(ct, 10, 64); err == nil {
				src.Epoch = time.Unix(sec, 0).UTC()
			}
		}
	}
	if s, ok := os.LookupEnv("SOURCE_DATE_EPOCH"); ok && s != "" {
		sec, err := strconv.ParseInt(s, 10, 64)
		if err != nil || sec < 0 {
			return Source{}, errkind.BadInputf("SOURCE_DATE_EPOCH %q: want seconds since 1970 as a non-negative integer", s)
		}
		src.Epoch = time.Unix(sec, 0).UTC()
	}
	return src, nil
}

func git(ctx context.Context, dir string, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = dir, &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return strings.TrimSpace(out.String()), nil
}

// webURL turns https://user@host/org/repo.git or git@host:org/repo.git into
// https://host/org/repo; anything else (a local path) into "".
func webURL(remote string) string {
	var host, path string
	if u, err := url.Parse(remote); err == nil && u.Host != "" && (u.Scheme == "https" || u.Scheme == "http" || u.Scheme == "ssh") {
		host, path = u.Hostname(), u.Path
	} else if at, rest, ok := strings.Cut(remote, "@"); ok && !strings.Contains(at, "/") {
		host, path, _ = strings.Cut(rest, ":")
	}
	if host == "" || path == "" {
		return ""
	}
	return "https://" + host + "/" + strings.TrimSuffix(strings.Trim(path, "/"), ".git")
}
