// Package imageref owns the container image reference: a repository with a
// tag, a digest or both, as render writes it into chart values, deploy and
// canaries report it, and a build will produce it. It only parses and
// formats; it never talks to a registry.
package imageref

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Ref is an image reference. Digest, when set, is what a cluster pulls; Tag
// is then only a name for people.
type Ref struct {
	// Repository is the image name with its registry, e.g.
	// localhost:5000/user or ghcr.io/acme/user.
	Repository string
	Tag        string
	// Digest is "sha256:" and 64 lower-case hex digits.
	Digest string
}

// The patterns are compiled on first use, not at start-up: msctl links this
// package into every command.
var patterns = sync.OnceValue(func() struct{ registry, component, tag, digest *regexp.Regexp } {
	return struct{ registry, component, tag, digest *regexp.Regexp }{
		// A registry host is a DNS name or an IP, optionally with a port;
		// it is told from a path component by a dot, a colon or being
		// localhost.
		registry:  regexp.MustCompile(`^(localhost|[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+|\[[0-9a-fA-F:]+\])(:[0-9]+)?$|^[a-zA-Z0-9-]+:[0-9]+$`),
		component: regexp.MustCompile(`^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*$`),
		tag:       regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`),
		digest:    regexp.MustCompile(`^sha256:[a-f0-9]{64}$`),
	}
})

// Parse reads "repo:tag", "repo@sha256:<hex>" or "repo:tag@sha256:<hex>";
// the repository may start with a registry, with a port as in
// localhost:5000/user:v1. A reference with neither tag nor digest is
// refused rather than taken as :latest, which names no particular image.
func Parse(s string) (Ref, error) {
	var r Ref
	rest := s
	if name, digest, ok := strings.Cut(s, "@"); ok {
		if !patterns().digest.MatchString(digest) {
			return Ref{}, fmt.Errorf("image reference %q: digest %q is not sha256: and 64 lower-case hex digits", s, digest)
		}
		r.Digest, rest = digest, name
	}
	// A tag follows the last colon after the last slash; a colon before it
	// is a registry's port.
	if i := strings.LastIndex(rest, ":"); i > strings.LastIndex(rest, "/") {
		r.Tag, rest = rest[i+1:], rest[:i]
		if !patterns().tag.MatchString(r.Tag) {
			return Ref{}, fmt.Errorf("image reference %q: tag %q is not letters, digits, '_', '.' and '-' (at most 128, not starting with '.' or '-')", s, r.Tag)
		}
	}
	if err := checkRepository(rest); err != nil {
		return Ref{}, fmt.Errorf("image reference %q: %v", s, err)
	}
	r.Repository = rest
	if r.Tag == "" && r.Digest == "" {
		return Ref{}, fmt.Errorf("image reference %q names neither a tag nor a digest", s)
	}
	return r, nil
}

func checkRepository(repo string) error {
	if repo == "" {
		return fmt.Errorf("no repository")
	}
	parts := strings.Split(repo, "/")
	if len(parts) > 1 && patterns().registry.MatchString(parts[0]) {
		parts = parts[1:]
	}
	for _, p := range parts {
		if !patterns().component.MatchString(p) {
			return fmt.Errorf("repository %q: %q is not lower-case letters and digits separated by '.', '_' or '-'", repo, p)
		}
	}
	return nil
}

// Validate checks r as Parse checks a reference: a repository, and a tag,
// a digest or both.
func (r Ref) Validate() error {
	s := r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	got, err := Parse(s)
	if err != nil {
		return err
	}
	if got != r {
		// A tag or digest written into the repository field.
		return fmt.Errorf("image repository %q holds more than a repository", r.Repository)
	}
	return nil
}

// String is the reference a Pod names: repository@digest when the digest is
// known, so the tag cannot move under it, else repository:tag.
func (r Ref) String() string {
	switch {
	case r.Repository == "":
		return ""
	case r.Digest != "":
		return r.Repository + "@" + r.Digest
	case r.Tag != "":
		return r.Repository + ":" + r.Tag
	default:
		return r.Repository
	}
}
