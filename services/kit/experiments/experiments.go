// Package experiments owns A/B experiment definitions and the assignment
// of users to variants. Assignment is a pure function of the experiment id
// and the user id, so every replica of every release puts a user in the
// same variant without shared state; changing the hash or the bucket
// layout would silently move users between variants and must never happen
// without a new experiment id.
//
// The package never reads configuration files, the environment or the
// clock on its own: callers pass definitions and the current time in.
package experiments

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/msctl/msctl/services/kit/validation"
)

// Status is where an experiment is in its life. Only running experiments
// assign users; the others keep their definition for reporting.
type Status string

// The statuses an experiment can be in.
const (
	StatusDraft   Status = "draft"
	StatusRunning Status = "running"
	StatusPaused  Status = "paused"
	StatusEnded   Status = "ended"
)

// buckets is the resolution of assignment: a user falls into one of
// 10,000 buckets, so a split can be given in whole percent and each
// percent is 100 buckets. Part of the assignment contract: do not change.
const buckets = 10000

// Variant is one arm of an experiment.
type Variant struct {
	// Name is unique within the experiment and is what callers and
	// metrics see, for example "control" or "one_page".
	Name string
	// Percent of eligible users, 0 to 100; all variants sum to 100.
	Percent int
}

// Targeting limits an experiment to some users. An empty field matches
// everyone; a user must match every non-empty field.
type Targeting struct {
	// Segments: the user must belong to at least one of them.
	Segments []string
	// Countries: ISO 3166-1 alpha-2 codes, compared case-insensitively.
	Countries []string
	// Devices: for example "ios", "android", "web"; case-insensitive.
	Devices []string
	// MinAppVersion is inclusive and MaxAppVersion exclusive; both are
	// dotted numbers such as "4.2" or "4.10.1". A user with no or an
	// unparsable app version is outside any version range.
	MinAppVersion string
	MaxAppVersion string
}

// Experiment is one test of variants against each other.
type Experiment struct {
	// ID is part of the assignment hash: renaming an experiment
	// reshuffles its users.
	ID       string
	Status   Status
	Variants []Variant
	Targeting
	// Start and End bound when the experiment assigns users; zero means
	// unbounded. Start is inclusive, End exclusive.
	Start, End time.Time
}

// User is what targeting and assignment need to know about a caller.
type User struct {
	ID         string
	Segments   []string
	Country    string
	Device     string
	AppVersion string
}

// ValidationError says which experiment and which field are wrong, so a
// bad config file can be fixed without guessing.
type ValidationError struct {
	Experiment string
	Field      string
	Problem    string
}

func (e *ValidationError) Error() string {
	return fmt.Sprintf("experiment %q: %s: %s", e.Experiment, e.Field, e.Problem)
}

// Validate reports every problem with e, joined; nil when e is usable.
func (e *Experiment) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ValidationError{Experiment: e.ID, Field: field, Problem: fmt.Sprintf(format, args...)})
	}
	if strings.TrimSpace(e.ID) == "" {
		bad("id", "is required")
	}
	switch e.Status {
	case StatusDraft, StatusRunning, StatusPaused, StatusEnded:
	default:
		bad("status", "%q is not one of draft, running, paused, ended", e.Status)
	}
	if len(e.Variants) == 0 {
		bad("variants", "at least one variant is required")
	}
	seen := map[string]bool{}
	sum := 0
	for i, v := range e.Variants {
		field := fmt.Sprintf("variants[%d]", i)
		if v.Name == "" {
			bad(field+".name", "is required")
		} else if seen[v.Name] {
			bad(field+".name", "%q is used by another variant", v.Name)
		}
		seen[v.Name] = true
		if v.Percent < 0 || v.Percent > 100 {
			bad(field+".percent", "%d is outside [0, 100]", v.Percent)
		}
		sum += v.Percent
	}
	if len(e.Variants) > 0 && sum != 100 {
		bad("variants", "percentages sum to %d, want 100", sum)
	}
	for _, f := range []struct{ name, value string }{
		{"targeting.min_app_version", e.MinAppVersion},
		{"targeting.max_app_version", e.MaxAppVersion},
	} {
		if f.value != "" {
			if _, err := parseVersion(f.value); err != nil {
				bad(f.name, "%v", err)
			}
		}
	}
	if lo, err1 := parseVersion(e.MinAppVersion); err1 == nil && e.MinAppVersion != "" {
		if hi, err2 := parseVersion(e.MaxAppVersion); err2 == nil && e.MaxAppVersion != "" && compareVersions(lo, hi) >= 0 {
			bad("targeting", "min_app_version %q is not below max_app_version %q", e.MinAppVersion, e.MaxAppVersion)
		}
	}
	if !e.Start.IsZero() && !e.End.IsZero() && !e.Start.Before(e.End) {
		bad("end", "%s is not after start %s", e.End.Format(time.RFC3339), e.Start.Format(time.RFC3339))
	}
	return validation.Join(errs...)
}

// Targets reports whether u is eligible for e by targeting alone, ignoring
// status and time window.
func (e *Experiment) Targets(u User) bool {
	if len(e.Segments) > 0 && !slices.ContainsFunc(u.Segments, func(s string) bool { return slices.Contains(e.Segments, s) }) {
		return false
	}
	if len(e.Countries) > 0 && !containsFold(e.Countries, u.Country) {
		return false
	}
	if len(e.Devices) > 0 && !containsFold(e.Devices, u.Device) {
		return false
	}
	if e.MinAppVersion != "" || e.MaxAppVersion != "" {
		v, err := parseVersion(u.AppVersion)
		if err != nil {
			return false
		}
		if lo, err := parseVersion(e.MinAppVersion); err == nil && e.MinAppVersion != "" && compareVersions(v, lo) < 0 {
			return false
		}
		if hi, err := parseVersion(e.MaxAppVersion); err == nil && e.MaxAppVersion != "" && compareVersions(v, hi) >= 0 {
			return false
		}
	}
	return true
}

// Active reports whether e assigns users at now: running and inside its
// time window.
func (e *Experiment) Active(now time.Time) bool {
	if e.Status != StatusRunning {
		return false
	}
	if !e.Start.IsZero() && now.Before(e.Start) {
		return false
	}
	if !e.End.IsZero() && !now.Before(e.End) {
		return false
	}
	return true
}

// Assign returns u's variant in e at now, and false when u is not in the
// experiment (inactive, not targeted, or e is invalid); callers then use
// their default behaviour and record no exposure.
func (e *Experiment) Assign(u User, now time.Time) (string, bool) {
	if u.ID == "" || !e.Active(now) || !e.Targets(u) || e.Validate() != nil {
		return "", false
	}
	return e.variantFor(Bucket(e.ID, u.ID)), true
}

// variantFor maps a bucket onto variants sorted by name, so the order in
// which a config file lists them does not matter.
func (e *Experiment) variantFor(bucket int) string {
	vs := slices.Clone(e.Variants)
	slices.SortFunc(vs, func(a, b Variant) int { return cmp.Compare(a.Name, b.Name) })
	upper := 0
	for _, v := range vs {
		upper += v.Percent * (buckets / 100)
		if bucket < upper {
			return v.Name
		}
	}
	// Unreachable for a valid experiment (percentages sum to 100).
	return vs[len(vs)-1].Name
}

// Bucket is the user's bucket in [0, 10000) for an experiment: the first
// eight bytes of SHA-256("expID:userID") as a big-endian integer, modulo
// 10000. Exported so other languages and tools can reproduce assignments.
func Bucket(expID, userID string) int {
	sum := sha256.Sum256([]byte(expID + ":" + userID))
	return int(binary.BigEndian.Uint64(sum[:8]) % buckets)
}

func containsFold(list []string, s string) bool {
	return slices.ContainsFunc(list, func(x string) bool { return strings.EqualFold(x, s) })
}

// parseVersion reads a dotted version such as "4.10.1"; missing parts
// compare as zero, so "4.2" equals "4.2.0".
func parseVersion(s string) ([]int, error) {
	if s == "" {
		return nil, errors.New("version is empty")
	}
	parts := strings.Split(s, ".")
	out := make([]int, len(parts))
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%q is not a dotted version like 4.2.1", s)
		}
		out[i] = n
	}
	return out, nil
}

func compareVersions(a, b []int) int {
	for i := range max(len(a), len(b)) {
		var x, y int
		if i < len(a) {
			x = a[i]
		}
		if i < len(b) {
			y = b[i]
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}
