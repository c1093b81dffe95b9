// Package domain holds the user service's rules in Go types: what a valid
// user is, how emails are normalised, which status changes are allowed.
// It knows nothing about protobuf, SQL or transports.
package domain

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"
	_ "time/tzdata" // known time zones even in images without /usr/share/zoneinfo
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"golang.org/x/text/language"
)

// Status is an account state.
type Status string

// The account states.
const (
	Active    Status = "active"
	Inactive  Status = "inactive"
	Suspended Status = "suspended"
)

// transitions lists the allowed status changes: a suspended account must be
// reactivated before it can be deactivated, so a suspension is never
// quietly turned into a voluntary leave.
var transitions = map[Status][]Status{
	Active:    {Inactive, Suspended},
	Inactive:  {Active},
	Suspended: {Active},
}

// Valid reports whether s is a known status.
func (s Status) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// CanBecome reports whether s may change to next (staying put is allowed).
func (s Status) CanBecome(next Status) bool {
	if s == next {
		return true
	}
	for _, t := range transitions[s] {
		if t == next {
			return true
		}
	}
	return false
}

// Preferences are a user's settings.
type Preferences struct {
	EmailNotifications bool
	Timezone           string
	Language           string
}

// DefaultPreferences apply when a new user gives none.
func DefaultPreferences() Preferences {
	return Preferences{EmailNotifications: true, Timezone: "UTC", Language: "en"}
}

// User is one account.
type User struct {
	ID          string
	Email       string
	FullName    string
	Status      Status
	Preferences Preferences
	Version     int64
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ValidationError is a rule a caller broke; transports map it to
// InvalidArgument / 400 with its message.
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Reason }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Limits on field sizes, so one user cannot bloat a row or a log line.
const (
	MaxEmailLen = 254 // RFC 5321 path limit
	MaxNameLen  = 200
)

// NormalizeEmail checks an address and returns its canonical form: trimmed
// and lower-cased, so "Alice@Example.com" and "alice@example.com" are one
// account, which is what people expect even though RFC 5321 lets the
// local part be case-sensitive.
func NormalizeEmail(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", invalid("email", "is required")
	}
	if len(s) > MaxEmailLen {
		return "", invalid("email", "is longer than %d bytes", MaxEmailLen)
	}
	a, err := mail.ParseAddress(s)
	// A display name ("Alice <a@b>") or comments would parse, but we store
	// a bare address only.
	if err != nil || a.Address != s || a.Name != "" {
		return "", invalid("email", "is not a valid address like name@example.com")
	}
	local, domain, ok := strings.Cut(s, "@")
	if !ok || local == "" || !strings.Contains(domain, ".") || strings.HasPrefix(domain, ".") || strings.HasSuffix(domain, ".") {
		return "", invalid("email", "needs a domain like example.com")
	}
	return strings.ToLower(s), nil
}

// NormalizeName trims a full name and checks it is usable.
func NormalizeName(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case s == "":
		return "", invalid("full_name", "is required")
	case !utf8.ValidString(s):
		return "", invalid("full_name", "is not valid UTF-8")
	case utf8.RuneCountInString(s) > MaxNameLen:
		return "", invalid("full_name", "is longer than %d characters", MaxNameLen)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "", invalid("full_name", "contains control characters")
		}
	}
	return s, nil
}

// Normalize checks the preferences and canonicalises the language tag.
func (p Preferences) Normalize() (Preferences, error) {
	if p.Timezone == "" {
		return p, invalid("preferences.timezone", "is required (an IANA name such as Europe/Berlin)")
	}
	// LoadLocation accepts "Local" and relative paths; neither is a zone.
	if p.Timezone == "Local" || strings.Contains(p.Timezone, "..") {
		return p, invalid("preferences.timezone", "%q is not an IANA time zone", p.Timezone)
	}
	if _, err := time.LoadLocation(p.Timezone); err != nil {
		return p, invalid("preferences.timezone", "%q is not a known IANA time zone", p.Timezone)
	}
	if p.Language == "" {
		return p, invalid("preferences.language", "is required (a BCP 47 tag such as en-GB)")
	}
	tag, err := language.Parse(p.Language)
	if err != nil {
		return p, invalid("preferences.language", "%q is not a BCP 47 language tag", p.Language)
	}
	p.Language = tag.String()
	return p, nil
}

// NewUser validates the input and returns an active user at version 1.
func NewUser(email, fullName string, prefs Preferences, now time.Time) (User, error) {
	var u User
	var err error
	if u.Email, err = NormalizeEmail(email); err != nil {
		return User{}, err
	}
	if u.FullName, err = NormalizeName(fullName); err != nil {
		return User{}, err
	}
	if u.Preferences, err = prefs.Normalize(); err != nil {
		return User{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return User{}, fmt.Errorf("domain: user id: %w", err)
	}
	u.ID = id.String()
	u.Status = Active
	u.Version = 1
	// Microseconds: what PostgreSQL stores, so both stores round-trip the
	// same value.
	u.CreatedAt = now.UTC().Truncate(time.Microsecond)
	u.UpdatedAt = u.CreatedAt
	return u, nil
}

// Patch is a partial update; nil fields are left alone.
type Patch struct {
	Email              *string
	FullName           *string
	Status             *Status
	EmailNotifications *bool
	Timezone           *string
	Language           *string
}

// ErrNoChange is returned by Apply when a patch sets nothing.
var ErrNoChange = errors.New("the update sets no field")

// Apply returns u changed by p, validated, with the version bumped.
func (u User) Apply(p Patch, now time.Time) (User, error) {
	next := u
	var err error
	changed := false
	if p.Email != nil {
		if next.Email, err = NormalizeEmail(*p.Email); err != nil {
			return User{}, err
		}
		changed = true
	}
	if p.FullName != nil {
		if next.FullName, err = NormalizeName(*p.FullName); err != nil {
			return User{}, err
		}
		changed = true
	}
	if p.Status != nil {
		if !p.Status.Valid() {
			return User{}, invalid("status", "%q is not active, inactive or suspended", *p.Status)
		}
		if !u.Status.CanBecome(*p.Status) {
			return User{}, &TransitionError{From: u.Status, To: *p.Status}
		}
		next.Status = *p.Status
		changed = true
	}
	if p.EmailNotifications != nil {
		next.Preferences.EmailNotifications = *p.EmailNotifications
		changed = true
	}
	if p.Timezone != nil {
		next.Preferences.Timezone = *p.Timezone
		changed = true
	}
	if p.Language != nil {
		next.Preferences.Language = *p.Language
		changed = true
	}
	if !changed {
		return User{}, invalid("update", "%v", ErrNoChange)
	}
	if next.Preferences, err = next.Preferences.Normalize(); err != nil {
		return User{}, err
	}
	next.Version = u.Version + 1
	next.UpdatedAt = now.UTC().Truncate(time.Microsecond)
	if !next.UpdatedAt.After(u.UpdatedAt) {
		next.UpdatedAt = u.UpdatedAt.Add(time.Microsecond) // clocks between replicas disagree
	}
	return next, nil
}

// TransitionError is a status change the rules forbid; transports map it
// to FailedPrecondition (400).
type TransitionError struct{ From, To Status }

func (e *TransitionError) Error() string {
	return fmt.Sprintf("status cannot change from %s to %s", e.From, e.To)
}

// EventKind says what happened to a user.
type EventKind string

// The event kinds.
const (
	Created EventKind = "created"
	Updated EventKind = "updated"
	Deleted EventKind = "deleted"
)

// Event is one change, stored in the same transaction as the change.
type Event struct {
	// ID increases in commit order; subscribers resume after it.
	ID         int64
	Kind       EventKind
	UserID     string
	OccurredAt time.Time
	// User is the user after the change (as it was, for deletions).
	User User
}
